//! The registry: hands out metric handles at build time and renders them.
//!
//! Its mutex is taken only when a handle is created (config compile) and at
//! scrape time; recording goes straight to the handle's atomics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::encoder::{is_label_name, is_metric_name, MetricWriter};
use super::primitives::{Counter, Gauge, Histogram};
use super::request::{
    RequestMetrics, DURATION_SECONDS, REQUESTS_TOTAL, REQUEST_BYTES, RESPONSE_BYTES,
};

/// Why a metric could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    /// The name is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidName(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*` (or starts with `__`, or
    /// is `le` on a histogram).
    #[error("metric {metric}: invalid label name {label:?}")]
    InvalidLabelName {
        /// The metric.
        metric: String,
        /// The offending label name.
        label: String,
    },
    /// The name is already used by a family of another type, or by the
    /// built-in request metrics.
    #[error("metric {0} is already registered with another type")]
    KindMismatch(String),
    /// The family exists with other label names (or order).
    #[error("metric {0} is already registered with other label names")]
    LabelNamesMismatch(String),
    /// The histogram family exists with other bucket bounds.
    #[error("histogram {0} is already registered with other buckets")]
    BucketsMismatch(String),
}

/// State owned elsewhere, written into the exposition at scrape time.
///
/// Implemented for closures, e.g.
/// `registry.register_collector(Arc::new(|w: &mut MetricWriter| ...))`.
pub trait Collector: Send + Sync {
    /// Appends samples; called once per scrape, without the registry locked.
    fn collect(&self, w: &mut MetricWriter);
}

impl<F: Fn(&mut MetricWriter) + Send + Sync> Collector for F {
    fn collect(&self, w: &mut MetricWriter) {
        self(w)
    }
}

#[derive(Debug)]
enum Cells {
    Counter(BTreeMap<Vec<String>, Arc<Counter>>),
    Gauge(BTreeMap<Vec<String>, Arc<Gauge>>),
    Histogram {
        bounds: Vec<f64>,
        series: BTreeMap<Vec<String>, Arc<Histogram>>,
    },
}

#[derive(Debug)]
struct Family {
    help: String,
    label_names: Vec<String>,
    cells: Cells,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String), Arc<RequestMetrics>>,
    families: BTreeMap<String, Family>,
    collectors: Vec<Arc<dyn Collector>>,
}

/// Owns every metric handle and renders them as Prometheus text.
///
/// Handles are keyed by their labels, so compiling the same config twice (a
/// reload) returns the same `Arc`s and counters carry on across reloads.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Registry")
            .field("request_handles", &inner.requests.len())
            .field("families", &inner.families.len())
            .field("collectors", &inner.collectors.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves maps that are still
        // consistent (every insert is a single call), so keep serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request metrics handle for `(route, cluster)`; the same `Arc` for
    /// the same labels.
    pub fn request_metrics(&self, route: &str, cluster: &str) -> Arc<RequestMetrics> {
        let mut inner = self.lock();
        let key = (route.to_owned(), cluster.to_owned());
        Arc::clone(
            inner
                .requests
                .entry(key)
                .or_insert_with(|| Arc::new(RequestMetrics::new(route, cluster))),
        )
    }

    /// Forgets request handles no longer held outside the registry (routes
    /// removed by a reload, once the old plan is dropped). Returns how many.
    pub fn prune_unused_request_metrics(&self) -> usize {
        let mut inner = self.lock();
        let before = inner.requests.len();
        inner.requests.retain(|_, m| Arc::strong_count(m) > 1);
        before - inner.requests.len()
    }

    /// The counter of family `name` with these labels (created if needed).
    pub fn counter(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Arc<Counter>, MetricsError> {
        let mut inner = self.lock();
        let fam = family(&mut inner, name, help, labels, || {
            Cells::Counter(BTreeMap::new())
        })?;
        match &mut fam.cells {
            Cells::Counter(series) => Ok(Arc::clone(series.entry(values(labels)).or_default())),
            _ => Err(MetricsError::KindMismatch(name.to_owned())),
        }
    }

    /// The gauge of family `name` with these labels (created if needed).
    pub fn gauge(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Arc<Gauge>, MetricsError> {
        let mut inner = self.lock();
        let fam = family(&mut inner, name, help, labels, || {
            Cells::Gauge(BTreeMap::new())
        })?;
        match &mut fam.cells {
            Cells::Gauge(series) => Ok(Arc::clone(series.entry(values(labels)).or_default())),
            _ => Err(MetricsError::KindMismatch(name.to_owned())),
        }
    }

    /// The histogram of family `name` with these labels (created if needed).
    /// Every series of a family shares the bounds given when it was created.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        bounds: &[f64],
        labels: &[(&str, &str)],
    ) -> Result<Arc<Histogram>, MetricsError> {
        if let Some((k, _)) = labels.iter().find(|(k, _)| *k == "le") {
            return Err(MetricsError::InvalidLabelName {
                metric: name.to_owned(),
                label: (*k).to_owned(),
            });
        }
        let normalized = Histogram::new(bounds).snapshot().bounds;
        let mut inner = self.lock();
        let fam = family(&mut inner, name, help, labels, || Cells::Histogram {
            bounds: normalized.clone(),
            series: BTreeMap::new(),
        })?;
        match &mut fam.cells {
            Cells::Histogram { bounds, series } if *bounds == normalized => {
                let h = series
                    .entry(values(labels))
                    .or_insert_with(|| Arc::new(Histogram::new(bounds)));
                Ok(Arc::clone(h))
            }
            Cells::Histogram { .. } => Err(MetricsError::BucketsMismatch(name.to_owned())),
            _ => Err(MetricsError::KindMismatch(name.to_owned())),
        }
    }

    /// Adds a collector called on every [`render`](Self::render).
    pub fn register_collector(&self, collector: Arc<dyn Collector>) {
        self.lock().collectors.push(collector);
    }

    /// Appends the whole exposition (Prometheus text format 0.0.4) to `out`.
    pub fn render(&self, out: &mut String) {
        let mut w = MetricWriter::new();
        // Copy the handles out so collectors run, and values are read,
        // without holding the lock (a collector may itself use the registry).
        let (requests, collectors) = {
            let inner = self.lock();
            for (name, fam) in &inner.families {
                write_family(&mut w, name, fam);
            }
            let requests: Vec<_> = inner.requests.values().cloned().collect();
            (requests, inner.collectors.clone())
        };
        for m in &requests {
            m.write_to(&mut w);
        }
        for c in &collectors {
            c.collect(&mut w);
        }
        if w.rejected() > 0 {
            tracing::warn!(rejected = w.rejected(), "metric samples skipped at scrape");
        }
        w.finish(out);
    }
}

fn values(labels: &[(&str, &str)]) -> Vec<String> {
    labels.iter().map(|(_, v)| (*v).to_owned()).collect()
}

/// Finds or creates family `name`, checking the name and label names.
fn family<'a>(
    inner: &'a mut Inner,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    cells: impl FnOnce() -> Cells,
) -> Result<&'a mut Family, MetricsError> {
    if !is_metric_name(name) {
        return Err(MetricsError::InvalidName(name.to_owned()));
    }
    if [
        REQUESTS_TOTAL,
        DURATION_SECONDS,
        REQUEST_BYTES,
        RESPONSE_BYTES,
    ]
    .contains(&name)
    {
        return Err(MetricsError::KindMismatch(name.to_owned()));
    }
    if let Some((k, _)) = labels.iter().find(|(k, _)| !is_label_name(k)) {
        return Err(MetricsError::InvalidLabelName {
            metric: name.to_owned(),
            label: (*k).to_owned(),
        });
    }
    let fam = inner
        .families
        .entry(name.to_owned())
        .or_insert_with(|| Family {
            help: help.to_owned(),
            label_names: labels.iter().map(|(k, _)| (*k).to_owned()).collect(),
            cells: cells(),
        });
    let same_names = fam.label_names.len() == labels.len()
        && fam.label_names.iter().zip(labels).all(|(a, (b, _))| a == b);
    if same_names {
        Ok(fam)
    } else {
        Err(MetricsError::LabelNamesMismatch(name.to_owned()))
    }
}

fn write_family(w: &mut MetricWriter, name: &str, fam: &Family) {
    let labels = |vals| pairs(&fam.label_names, vals);
    match &fam.cells {
        Cells::Counter(series) => {
            for (vals, c) in series {
                w.counter(name, &fam.help, &labels(vals), c.get());
            }
        }
        Cells::Gauge(series) => {
            for (vals, g) in series {
                // i64 -> f64 is exact up to 2^53, far beyond any gauge here.
                w.gauge(name, &fam.help, &labels(vals), g.get() as f64);
            }
        }
        Cells::Histogram { series, .. } => {
            for (vals, h) in series {
                w.histogram(name, &fam.help, &labels(vals), &h.snapshot());
            }
        }
    }
}

fn pairs<'a>(names: &'a [String], vals: &'a [String]) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .zip(vals)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
