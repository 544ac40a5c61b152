//! JSON-lines access log, written off the request path.
//!
//! [`AccessLog::log`] formats the line straight into a shared chunk buffer (a
//! short, uncontended lock). A full chunk (32 KiB, or `queue_lines` lines if
//! fewer) goes to a dedicated writer thread over a bounded channel; a chunk that
//! is not full is picked up by the writer once it is `flush_interval` old. The
//! writer thread is therefore woken about once per 32 KiB of log, not once per
//! line: with a thread per line, every request paid a futex wake and a context
//! switch (the gateway and its writer share cores). It never blocks: when the
//! queue is full (the disk or pipe cannot keep up) the chunk is dropped and its
//! lines counted. The thread writes through a `BufWriter` and flushes when it has
//! held data for the flush interval (100 ms by default), on
//! [`AccessLog::flush`], and when the log is dropped.
//!
//! One line per request, fields in this order:
//! `time remote_addr method uri status size ua ptime host request_id route
//! cluster upstream_addr upstream_time auth auth_id` (see [`AccessLogEntry`]).

mod entry;
mod json;
mod writer;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

pub use entry::AccessLogEntry;

use crate::metrics::Counter;
use writer::{Msg, Pending, WriterLoop, MAX_RECYCLED_CAPACITY};

/// A chunk of lines is handed to the writer once it holds this many bytes.
const CHUNK_BYTES: usize = 32 * 1024;
/// Lines per chunk at most (fewer when `queue_lines` is smaller).
const CHUNK_LINES: usize = 256;

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
    /// Lines that may wait for the writer before new ones are dropped (counted in
    /// chunks of up to 256 lines, so the bound is approximate for large values).
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
    /// The chunk being filled; the writer takes it when it is old enough.
    pending: Arc<Mutex<Pending>>,
    /// Lines per chunk.
    chunk_lines: u64,
    free: Receiver<Vec<u8>>,
    /// Returns buffers of dropped chunks to `free`.
    free_tx: Sender<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

fn lock(p: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // A panic while formatting a line leaves at worst a partial line; keep logging.
    p.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let queue_lines = options.queue_lines.max(1);
        let chunk_lines = queue_lines.min(CHUNK_LINES);
        let cap = (queue_lines / chunk_lines).max(1);
        let (tx, rx) = crossbeam_channel::bounded(cap);
        let (free_tx, free_rx) = crossbeam_channel::bounded(cap);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let worker = WriterLoop {
            rx,
            pending: pending.clone(),
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
                pending,
                chunk_lines: chunk_lines as u64,
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
            pending,
            chunk_lines,
            free,
            free_tx,
            ..
        }) = &self.running
        else {
            return;
        };
        let mut p = lock(pending);
        write(&mut p.buf);
        p.lines += 1;
        if p.buf.len() >= CHUNK_BYTES || p.lines >= *chunk_lines {
            // Sent under the lock, so the writer's own pick-up of `pending` cannot
            // overtake this older chunk.
            let fresh = free
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + 1024));
            let chunk = std::mem::replace(&mut p.buf, fresh);
            let lines = std::mem::take(&mut p.lines);
            // Sent or not, the writer has (or will have) work and then looks at `pending`.
            p.wake_sent = true;
            if let Err(TrySendError::Full(Msg::Chunk(mut buf)))
            | Err(TrySendError::Disconnected(Msg::Chunk(mut buf))) =
                tx.try_send(Msg::Chunk(chunk))
            {
                self.dropped.add(lines);
                if buf.capacity() <= MAX_RECYCLED_CAPACITY {
                    buf.clear();
                    // The free list is as long as the queue; a full one loses a buffer, no more.
                    let _ = free_tx.try_send(buf);
                }
            }
        } else if !p.wake_sent {
            // The first line since the writer last looked: make sure it picks the chunk up
            // within the flush interval even if it never fills. One wake per pick-up at
            // most; a full queue means the writer is busy and will look at `pending`
            // anyway when it is done.
            p.wake_sent = true;
            let _ = tx.try_send(Msg::Wake);
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
