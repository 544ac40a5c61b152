//! JSON-lines access log, written off the request path.
//!
//! [`AccessLog::log`] formats the line into a recycled buffer and hands it to
//! a dedicated writer thread over a bounded channel. It never blocks: when the
//! queue is full (the disk or pipe cannot keep up) the line is dropped and
//! counted. The thread batches lines in a `BufWriter` and flushes when it has
//! held data for the flush interval (100 ms by default), on
//! [`AccessLog::flush`], and when the log is dropped.
//!
//! One line per request, fields in this order:
//! `time remote_addr method uri status size ua ptime host request_id route
//! cluster upstream_addr upstream_time` (see [`AccessLogEntry`]).

mod entry;
mod json;
mod writer;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

pub use entry::AccessLogEntry;

use crate::metrics::Counter;
use writer::{Msg, WriterLoop, MAX_RECYCLED_CAPACITY};

/// How long [`AccessLog::flush`] waits for the writer thread.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Nowhere: [`AccessLog::log`] returns at once.
    Off,
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// A file, created if missing and opened for append.
    File(PathBuf),
}

/// Tuning for an [`AccessLog`]; `Default` suits a gateway.
#[derive(Debug, Clone)]
pub struct AccessLogOptions {
    /// Lines that may wait for the writer before new ones are dropped.
    pub queue_lines: usize,
    /// Longest time a written line may sit in the buffer before a flush.
    pub flush_interval: Duration,
    /// `BufWriter` capacity; 0 writes each line straight through.
    pub buffer_bytes: usize,
    /// Counter of dropped lines, e.g. a registry counter so drops show in
    /// metrics; a private counter when `None`.
    pub dropped: Option<Arc<Counter>>,
}

impl Default for AccessLogOptions {
    fn default() -> Self {
        Self {
            queue_lines: 8192,
            flush_interval: Duration::from_millis(100),
            buffer_bytes: 64 * 1024,
            dropped: None,
        }
    }
}

/// Why the access log could not be opened or flushed.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The log file could not be opened.
    #[error("opening access log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("starting the access log writer thread: {0}")]
    Spawn(io::Error),
    /// Writing or flushing failed.
    #[error("writing the access log: {0}")]
    Write(io::Error),
    /// The writer did not answer in time (blocked on a slow disk or pipe).
    #[error("the access log writer did not answer within {0:?}")]
    Timeout(Duration),
    /// The writer thread is gone.
    #[error("the access log writer has stopped")]
    Closed,
}

struct Running {
    /// `None` once closing: dropping the sender ends the writer loop.
    tx: Option<Sender<Msg>>,
    free: Receiver<Vec<u8>>,
    /// Returns buffers of dropped lines to `free`.
    free_tx: Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

/// The access log sink; share it behind an `Arc`.
pub struct AccessLog {
    running: Option<Running>,
    dropped: Arc<Counter>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("enabled", &self.is_enabled())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl AccessLog {
    /// A log that writes nothing.
    pub fn off() -> Self {
        Self {
            running: None,
            dropped: Arc::new(Counter::new()),
        }
    }

    /// Opens `target` and starts the writer thread (none for `Off`).
    pub fn open(
        target: &AccessLogTarget,
        options: AccessLogOptions,
    ) -> Result<Self, AccessLogError> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(Self::off()),
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::Stderr => Box::new(io::stderr()),
            AccessLogTarget::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AccessLogError::Open {
                        path: path.clone(),
                        source,
                    })?,
            ),
        };
        Self::to_writer(sink, options)
    }

    /// Writes lines to any `Write` (tests, or a sink the caller opened).
    pub fn to_writer(
        sink: Box<dyn Write + Send>,
        options: AccessLogOptions,
    ) -> Result<Self, AccessLogError> {
        let cap = options.queue_lines.max(1);
        let (tx, rx) = crossbeam_channel::bounded(cap);
        let (free_tx, free_rx) = crossbeam_channel::bounded(cap);
        let worker = WriterLoop {
            rx,
            free: free_tx.clone(),
            out: io::BufWriter::with_capacity(options.buffer_bytes, sink),
            flush_interval: options.flush_interval,
        };
        let thread = std::thread::Builder::new()
            .name("sekisho-access-log".into())
            .spawn(move || worker.run())
            .map_err(AccessLogError::Spawn)?;
        Ok(Self {
            running: Some(Running {
                tx: Some(tx),
                free: free_rx,
                free_tx,
                thread: Some(thread),
            }),
            dropped: options.dropped.unwrap_or_default(),
        })
    }

    /// Whether lines are written anywhere; callers may skip building entries.
    pub fn is_enabled(&self) -> bool {
        self.running.is_some()
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Queues one line. Never blocks; drops (and counts) the line when the
    /// writer is behind.
    pub fn log(&self, entry: &AccessLogEntry<'_>) {
        self.log_with(|buf| entry.write_json(buf));
    }

    /// Queues one line in a caller's own format (e.g. another proxy's field set):
    /// `write` appends the line, newline included, to a recycled buffer. Never blocks,
    /// like [`AccessLog::log`].
    pub fn log_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(Running {
            tx: Some(tx),
            free,
            free_tx,
            ..
        }) = &self.running
        else {
            return;
        };
        let mut buf = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(512));
        write(&mut buf);
        if let Err(TrySendError::Full(Msg::Line(mut buf)))
        | Err(TrySendError::Disconnected(Msg::Line(mut buf))) = tx.try_send(Msg::Line(buf))
        {
            self.dropped.inc();
            if buf.capacity() <= MAX_RECYCLED_CAPACITY {
                buf.clear();
                // The free list is as long as the queue; a full one loses a buffer, no more.
                let _ = free_tx.try_send(buf);
            }
        }
    }

    /// Waits until every line queued before this call is written and
    /// flushed. Not for the request path: it blocks (at most 5 s).
    pub fn flush(&self) -> Result<(), AccessLogError> {
        let Some(Running { tx: Some(tx), .. }) = &self.running else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        match tx.send_timeout(Msg::Flush(ack_tx), FLUSH_TIMEOUT) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => {
                return Err(AccessLogError::Timeout(FLUSH_TIMEOUT))
            }
            Err(SendTimeoutError::Disconnected(_)) => return Err(AccessLogError::Closed),
        }
        match ack_rx.recv_timeout(FLUSH_TIMEOUT) {
            Ok(r) => r.map_err(AccessLogError::Write),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(AccessLogError::Timeout(FLUSH_TIMEOUT))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(AccessLogError::Closed),
        }
    }

    /// Stops accepting lines, writes the queued ones, flushes and joins the
    /// writer thread. Dropping the log does the same.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(running) = &mut self.running {
            // Dropping the last sender lets the loop drain the queue and exit.
            running.tx = None;
            if let Some(thread) = running.thread.take() {
                if thread.join().is_err() {
                    tracing::error!("access log writer thread panicked");
                }
            }
        }
        self.running = None;
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
