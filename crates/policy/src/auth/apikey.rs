//! API keys from a file or an environment variable, each with a name for logs, metrics and
//! rate-limit keys.

use std::collections::HashMap;

use http::HeaderName;

use crate::config::ApiKeysConfig;
use crate::error::PolicyError;

#[derive(Debug)]
pub(crate) struct ApiKeys {
    pub(crate) header: HeaderName,
    /// key → name
    keys: HashMap<String, String>,
}

impl ApiKeys {
    pub(crate) fn load(cfg: &ApiKeysConfig) -> Result<Self, PolicyError> {
        let header = if cfg.header.is_empty() {
            "x-api-key"
        } else {
            cfg.header.as_str()
        };
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            PolicyError::invalid("api_keys.header", format!("bad header name {header:?}"))
        })?;
        let mut keys = HashMap::new();
        if let Some(path) = &cfg.file {
            let text = std::fs::read_to_string(path).map_err(|source| PolicyError::ReadFile {
                path: path.clone(),
                source,
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, key) = line.split_once(':').ok_or_else(|| {
                    PolicyError::invalid(
                        "api_keys.file",
                        format!("{}:{}: expected `name: key`", path.display(), i + 1),
                    )
                })?;
                insert(&mut keys, name, key)?;
            }
        }
        if let Some(var) = &cfg.env {
            let text = std::env::var(var).map_err(|_| PolicyError::MissingEnv(var.clone()))?;
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, key) = pair.split_once(':').ok_or_else(|| {
                    PolicyError::invalid("api_keys.env", format!("{var}: expected name:key,..."))
                })?;
                insert(&mut keys, name, key)?;
            }
        }
        if keys.is_empty() {
            return Err(PolicyError::invalid(
                "api_keys",
                "no key configured (file or env)",
            ));
        }
        Ok(Self { header, keys })
    }

    /// The key's name, if `presented` is a known key.
    pub(crate) fn lookup(&self, presented: &str) -> Option<&str> {
        self.keys.get(presented).map(String::as_str)
    }
}

fn insert(keys: &mut HashMap<String, String>, name: &str, key: &str) -> Result<(), PolicyError> {
    let (name, key) = (name.trim(), key.trim());
    if name.is_empty() || key.len() < 16 {
        return Err(PolicyError::invalid(
            "api_keys",
            format!("key {name:?}: a name and a key of at least 16 characters"),
        ));
    }
    if keys.insert(key.to_string(), name.to_string()).is_some() {
        return Err(PolicyError::invalid(
            "api_keys",
            format!("key {name:?} appears twice"),
        ));
    }
    Ok(())
}
