//! chocon's access log: one JSON object per request with its field names
//! (`time remote_addr method uri status size ua ptime host chocon_req`), so existing log
//! parsers keep working, written through the telemetry crate's non-blocking sink; and
//! chocon's log directory: `access_log.YYYYMMDDhhmm` files, a `current` symlink, rotation
//! every `--access-log-rotate-time` minutes, removal after `--access-log-rotate` days.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sekisho_telemetry::access_log::{AccessLog, AccessLogOptions, AccessLogTarget};

use crate::config::AccessLogSetting;
use crate::error::EgressError;

/// One request's line.
#[derive(Debug, Clone)]
pub(crate) struct Line<'a> {
    pub time: SystemTime,
    pub remote_addr: IpAddr,
    pub method: &'a str,
    pub uri: &'a str,
    pub status: u16,
    pub size: u64,
    pub ua: &'a str,
    pub ptime: Duration,
    pub host: &'a str,
    pub chocon_req: &'a str,
}

impl Line<'_> {
    /// Appends the JSON line, newline included.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let s = |out: &mut Vec<u8>, v: &str| {
            // Writing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, v);
        };
        out.extend_from_slice(b"{\"time\":\"");
        out.extend_from_slice(format_time(self.time).as_bytes());
        out.extend_from_slice(b"\",\"remote_addr\":\"");
        out.extend_from_slice(self.remote_addr.to_string().as_bytes());
        out.extend_from_slice(b"\",\"method\":");
        s(out, self.method);
        out.extend_from_slice(b",\"uri\":");
        s(out, self.uri);
        out.extend_from_slice(
            format!(",\"status\":{},\"size\":{},\"ua\":", self.status, self.size).as_bytes(),
        );
        s(out, self.ua);
        out.extend_from_slice(
            format!(",\"ptime\":{},\"host\":", self.ptime.as_secs_f64()).as_bytes(),
        );
        s(out, self.host);
        out.extend_from_slice(b",\"chocon_req\":");
        s(out, self.chocon_req);
        out.extend_from_slice(b"}\n");
    }
}

/// chocon's `2006/01/02 15:04:05 MST` layout, in UTC.
pub(crate) fn format_time(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// (year, month, day, hour, minute, second) in UTC.
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let small = |v: u64| u32::try_from(v).unwrap_or(0);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
        small(rem / 3600),
        small(rem % 3600 / 60),
        small(rem % 60),
    )
}

/// Opens the configured sink.
pub(crate) fn open(setting: &AccessLogSetting) -> Result<AccessLog, EgressError> {
    let options = AccessLogOptions::default();
    Ok(match setting {
        AccessLogSetting::Off => AccessLog::off(),
        AccessLogSetting::Stderr => AccessLog::open(&AccessLogTarget::Stderr, options)?,
        AccessLogSetting::Stdout => AccessLog::open(&AccessLogTarget::Stdout, options)?,
        AccessLogSetting::Dir { dir, keep, every } => {
            let writer =
                RotatingFile::open(dir, *every, *keep, SystemTime::now()).map_err(|source| {
                    EgressError::AccessLogDir {
                        path: dir.clone(),
                        source,
                    }
                })?;
            AccessLog::to_writer(Box::new(writer), options)?
        }
    })
}

/// A `Write` that starts a new file at each period boundary (runs on the log's writer thread).
pub(crate) struct RotatingFile {
    dir: PathBuf,
    every: Duration,
    keep: Duration,
    file: File,
    period_end: SystemTime,
}

impl RotatingFile {
    pub(crate) fn open(
        dir: &Path,
        every: Duration,
        keep: Duration,
        now: SystemTime,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (file, period_end) = Self::create(dir, every, now)?;
        Ok(Self {
            dir: dir.to_owned(),
            every,
            keep,
            file,
            period_end,
        })
    }

    fn create(dir: &Path, every: Duration, now: SystemTime) -> io::Result<(File, SystemTime)> {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let step = every.as_secs().max(60);
        let start = UNIX_EPOCH + Duration::from_secs(secs - secs % step);
        let (y, mo, d, h, mi, _) = civil(start);
        let name = format!("access_log.{y:04}{mo:02}{d:02}{h:02}{mi:02}");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(&name))?;
        // `current` always names the newest file (replace atomically via a temp link).
        let tmp = dir.join(".current.tmp");
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&name, &tmp)?;
            std::fs::rename(&tmp, dir.join("current"))?;
        }
        Ok((file, start + Duration::from_secs(step)))
    }

    fn rotate_if_due(&mut self, now: SystemTime) -> io::Result<()> {
        if now < self.period_end {
            return Ok(());
        }
        let (file, end) = Self::create(&self.dir, self.every, now)?;
        self.file = file;
        self.period_end = end;
        self.remove_old(now);
        Ok(())
    }

    /// Removes `access_log.*` files not written to within `keep`.
    fn remove_old(&self, now: SystemTime) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age > self.keep));
            if old && e.file_name().to_string_lossy().starts_with("access_log.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

impl RotatingFile {
    fn write_at(&mut self, buf: &[u8], now: SystemTime) -> io::Result<usize> {
        self.rotate_if_due(now)?;
        self.file.write(buf)
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at(buf, SystemTime::now())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_layout() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_294_645); // 2024-03-01T12:04:05Z
        assert_eq!(format_time(t), "2024/03/01 12:04:05 UTC");
        assert_eq!(format_time(UNIX_EPOCH), "1970/01/01 00:00:00 UTC");
    }

    #[test]
    fn line_has_chocon_fields_in_order() {
        let mut out = Vec::new();
        Line {
            time: UNIX_EPOCH,
            remote_addr: "127.0.0.1".parse().expect("ip"),
            method: "GET",
            uri: "/a\"b",
            status: 200,
            size: 12,
            ua: "curl/8",
            ptime: Duration::from_millis(1500),
            host: "example.com.ccnproxy",
            chocon_req: "id1",
        }
        .write(&mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["uri"], "/a\"b");
        assert_eq!(v["ptime"], 1.5);
        let keys: Vec<&str> = [
            "time",
            "remote_addr",
            "method",
            "uri",
            "status",
            "size",
            "ua",
            "ptime",
            "host",
            "chocon_req",
        ]
        .to_vec();
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect("field"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn rotation_makes_new_files_and_a_current_link() {
        let dir = tempfile::tempdir().expect("dir");
        let t0 = UNIX_EPOCH + Duration::from_secs(1_709_294_400); // 12:00:00
        let mut w = RotatingFile::open(
            dir.path(),
            Duration::from_secs(60),
            Duration::from_secs(86_400),
            t0,
        )
        .expect("open");
        w.write_at(b"one\n", t0 + Duration::from_secs(30))
            .expect("write");
        w.write_at(b"two\n", t0 + Duration::from_secs(61))
            .expect("write");
        w.flush().expect("flush");
        let a = std::fs::read_to_string(dir.path().join("access_log.202403011200")).expect("first");
        let b =
            std::fs::read_to_string(dir.path().join("access_log.202403011201")).expect("second");
        assert_eq!((a.as_str(), b.as_str()), ("one\n", "two\n"));
        let current = std::fs::read_link(dir.path().join("current")).expect("link");
        assert_eq!(current, PathBuf::from("access_log.202403011201"));
    }
}
