//! API keys from a file or an environment variable, each with a name for logs, metrics and
//! rate-limit keys.
//!
//! Keys are kept and looked up only as SHA-256 digests: the lookup hashes the presented key
//! and finds its digest in a map, so how long it takes says nothing about how much of a real
//! key a guess got right (a plain string map compares the secret byte by byte), and the
//! process holds no key in clear once loaded.

use std::collections::HashMap;

use http::HeaderName;
use sha2::{Digest, Sha256};

use crate::config::ApiKeysConfig;
use crate::error::PolicyError;

type KeyDigest = [u8; 32];

fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

#[derive(Debug)]
pub(crate) struct ApiKeys {
    pub(crate) header: HeaderName,
    /// SHA-256 of a key → its name's index in `names`.
    keys: HashMap<KeyDigest, usize>,
    /// The distinct key names, in config order (two keys may share a name, e.g. while one
    /// replaces the other).
    names: Vec<String>,
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
        let mut keys = Self {
            header,
            keys: HashMap::new(),
            names: Vec::new(),
        };
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
                keys.insert(name, key)?;
            }
        }
        if let Some(var) = &cfg.env {
            let text = std::env::var(var).map_err(|_| PolicyError::MissingEnv(var.clone()))?;
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, key) = pair.split_once(':').ok_or_else(|| {
                    PolicyError::invalid("api_keys.env", format!("{var}: expected name:key,..."))
                })?;
                keys.insert(name, key)?;
            }
        }
        if keys.keys.is_empty() {
            return Err(PolicyError::invalid(
                "api_keys",
                "no key configured (file or env)",
            ));
        }
        Ok(keys)
    }

    /// The key's name and its index in [`ApiKeys::names`], if `presented` is a known key.
    pub(crate) fn lookup(&self, presented: &str) -> Option<(usize, &str)> {
        let i = *self.keys.get(&digest(presented))?;
        self.names.get(i).map(|n| (i, n.as_str()))
    }

    /// The distinct key names.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    fn insert(&mut self, name: &str, key: &str) -> Result<(), PolicyError> {
        let (name, key) = (name.trim(), key.trim());
        if name.is_empty() || key.len() < 16 {
            return Err(PolicyError::invalid(
                "api_keys",
                format!("key {name:?}: a name and a key of at least 16 characters"),
            ));
        }
        let index = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        if self.keys.insert(digest(key), index).is_some() {
            return Err(PolicyError::invalid(
                "api_keys",
                format!("key {name:?} appears twice"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_digest_and_shared_names() {
        let mut k = ApiKeys {
            header: HeaderName::from_static("x-api-key"),
            keys: HashMap::new(),
            names: Vec::new(),
        };
        k.insert("acme", "k-acme-old-0123456789").unwrap();
        k.insert("globex", " k-globex-0123456789 ").unwrap();
        k.insert("acme", "k-acme-new-0123456789").unwrap();
        assert_eq!(k.lookup("k-acme-old-0123456789"), Some((0, "acme")));
        assert_eq!(k.lookup("k-acme-new-0123456789"), Some((0, "acme")));
        assert_eq!(k.lookup("k-globex-0123456789"), Some((1, "globex")));
        assert_eq!(k.names, ["acme", "globex"]);
        // Prefixes, extensions and near misses of a real key are just unknown.
        for guess in [
            "k-acme-old-012345678",
            "k-acme-old-0123456789x",
            "",
            "K-ACME-OLD-0123456789",
        ] {
            assert_eq!(k.lookup(guess), None, "{guess}");
        }
        assert!(
            k.insert("other", "k-globex-0123456789").is_err(),
            "a key twice"
        );
        assert!(k.insert("short", "too-short").is_err());
        // Only digests are kept.
        assert!(!format!("{k:?}").contains("k-acme"));
    }
}
