//! Prometheus text exposition (format 0.0.4) writer.
//!
//! [`MetricWriter`] buffers samples per family and writes each family once,
//! header first, in [`MetricWriter::finish`]. So several sources (the
//! registry, a pool collector, a DNS cache collector) can append samples of
//! the same family in any order without producing a second `# TYPE` line,
//! which Prometheus would reject.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::primitives::HistogramSnapshot;

/// `Content-Type` of the text written by [`MetricWriter::finish`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a metric family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets plus `_sum` and `_count`.
    Histogram,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
struct FamilyBuf {
    kind: MetricKind,
    help: String,
    body: String,
}

/// Collects samples grouped by family, then writes them as Prometheus text.
///
/// Invalid metric or label names, and samples whose family was first written
/// with another type, are skipped and counted in [`MetricWriter::rejected`]:
/// a scrape must stay parseable whatever a collector passes in.
#[derive(Debug, Default)]
pub struct MetricWriter {
    families: BTreeMap<String, FamilyBuf>,
    rejected: u64,
}

impl MetricWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a counter sample. `name` should end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        if let Some(body) = self.family(name, help, MetricKind::Counter, labels) {
            write_sample(body, name, "", labels, None);
            let _ = writeln!(body, " {value}");
        }
    }

    /// Appends a gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(body) = self.family(name, help, MetricKind::Gauge, labels) {
            write_sample(body, name, "", labels, None);
            body.push(' ');
            write_f64(body, value);
            body.push('\n');
        }
    }

    /// Appends one histogram series: `_bucket` lines (cumulative, ending with
    /// `le="+Inf"`), `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        snap: &HistogramSnapshot,
    ) {
        if labels.iter().any(|(k, _)| *k == "le") {
            self.rejected += 1;
            return;
        }
        let Some(body) = self.family(name, help, MetricKind::Histogram, labels) else {
            return;
        };
        let mut le = String::new();
        for (bound, count) in snap.bounds.iter().zip(&snap.cumulative) {
            le.clear();
            write_f64(&mut le, *bound);
            write_sample(body, name, "_bucket", labels, Some(&le));
            let _ = writeln!(body, " {count}");
        }
        write_sample(body, name, "_bucket", labels, Some("+Inf"));
        let _ = writeln!(body, " {}", snap.count);
        write_sample(body, name, "_sum", labels, None);
        body.push(' ');
        write_f64(body, snap.sum);
        body.push('\n');
        write_sample(body, name, "_count", labels, None);
        let _ = writeln!(body, " {}", snap.count);
    }

    /// Samples skipped because of an invalid name or a type conflict.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Writes every family, sorted by name: `# HELP`, `# TYPE`, then samples.
    pub fn finish(self, out: &mut String) {
        for (name, fam) in &self.families {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(out, &fam.help);
            out.push_str("\n# TYPE ");
            out.push_str(name);
            out.push(' ');
            out.push_str(fam.kind.as_str());
            out.push('\n');
            out.push_str(&fam.body);
        }
    }

    /// The body buffer of family `name`, created on first use; `None` (and
    /// counted) when the sample must be skipped.
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
    ) -> Option<&mut String> {
        if !is_metric_name(name) || !labels.iter().all(|(k, _)| is_label_name(k)) {
            self.rejected += 1;
            return None;
        }
        if !self.families.contains_key(name) {
            let fam = FamilyBuf {
                kind,
                help: help.to_owned(),
                body: String::new(),
            };
            self.families.insert(name.to_owned(), fam);
        }
        match self.families.get_mut(name) {
            Some(fam) if fam.kind == kind => Some(&mut fam.body),
            _ => {
                self.rejected += 1;
                None
            }
        }
    }
}

/// `name{labels,le="…"}` without the value.
fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|v| ("le", v))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out.push('}');
}

/// Label values escape `\`, `"` and line feed; everything else is literal UTF-8.
pub(crate) fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes only `\` and line feed.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Values as Go's `ParseFloat` reads them: `+Inf`, `-Inf`, `NaN`, or decimal.
fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub(crate) fn is_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not `__`-prefixed (reserved by Prometheus).
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    !s.starts_with("__")
        && matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(w: MetricWriter) -> String {
        let mut out = String::new();
        w.finish(&mut out);
        out
    }

    #[test]
    fn families_are_grouped_with_one_header() {
        let mut w = MetricWriter::new();
        w.gauge("pool_idle", "Idle.", &[("cluster", "a")], 3.0);
        w.counter("dns_hits_total", "Hits.", &[], 9);
        w.gauge("pool_idle", "Idle.", &[("cluster", "b")], 1.5);
        let out = render(w);
        assert_eq!(
            out,
            "# HELP dns_hits_total Hits.\n# TYPE dns_hits_total counter\ndns_hits_total 9\n\
             # HELP pool_idle Idle.\n# TYPE pool_idle gauge\n\
             pool_idle{cluster=\"a\"} 3\npool_idle{cluster=\"b\"} 1.5\n"
        );
    }

    #[test]
    fn escaping_of_label_values_and_help() {
        let mut w = MetricWriter::new();
        w.counter("x_total", "a \\ b\nc \"q\"", &[("v", "q\"b\\s\nn")], 1);
        let out = render(w);
        assert!(out.contains("# HELP x_total a \\\\ b\\nc \"q\"\n"), "{out}");
        assert!(out.contains("x_total{v=\"q\\\"b\\\\s\\nn\"} 1\n"), "{out}");
    }

    #[test]
    fn invalid_names_and_type_conflicts_are_rejected() {
        let mut w = MetricWriter::new();
        w.counter("bad name", "", &[], 1);
        w.counter("ok_total", "", &[("0bad", "v")], 1);
        w.counter("ok_total", "", &[("__reserved", "v")], 1);
        w.gauge("g", "", &[], 1.0);
        w.counter("g", "", &[], 1);
        let snap = HistogramSnapshot {
            bounds: vec![],
            cumulative: vec![],
            count: 0,
            sum: 0.0,
        };
        w.histogram("h", "", &[("le", "1")], &snap);
        assert_eq!(w.rejected(), 5);
        let out = render(w);
        assert_eq!(out.matches("# TYPE").count(), 1, "{out}");
    }

    #[test]
    fn special_float_values() {
        let mut w = MetricWriter::new();
        w.gauge("a", "", &[("k", "inf")], f64::INFINITY);
        w.gauge("a", "", &[("k", "ninf")], f64::NEG_INFINITY);
        w.gauge("a", "", &[("k", "nan")], f64::NAN);
        w.gauge("a", "", &[("k", "small")], 0.0005);
        let out = render(w);
        assert!(out.contains("a{k=\"inf\"} +Inf\n"));
        assert!(out.contains("a{k=\"ninf\"} -Inf\n"));
        assert!(out.contains("a{k=\"nan\"} NaN\n"));
        assert!(out.contains("a{k=\"small\"} 0.0005\n"));
    }

    #[test]
    fn name_rules() {
        assert!(is_metric_name("sekisho_requests_total"));
        assert!(is_metric_name("a:b"));
        assert!(!is_metric_name("1a"));
        assert!(!is_metric_name(""));
        assert!(is_label_name("route"));
        assert!(!is_label_name("a:b"));
        assert!(!is_label_name(""));
    }
}
