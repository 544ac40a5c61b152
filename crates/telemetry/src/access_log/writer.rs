//! The dedicated thread that batches log lines into a `BufWriter`.
//!
//! A plain thread, not a tokio task: writes to a file or a pipe block, and
//! the log must still drain while the runtime is shutting down.

use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// Buffers bigger than this are freed rather than recycled, so one huge
/// line does not pin its memory forever.
pub(crate) const MAX_RECYCLED_CAPACITY: usize = 16 * 1024;

pub(crate) enum Msg {
    /// One formatted line, newline included.
    Line(Vec<u8>),
    /// Write and flush everything received so far, then answer.
    Flush(Sender<io::Result<()>>),
}

pub(crate) struct WriterLoop {
    pub(crate) rx: Receiver<Msg>,
    /// Where emptied line buffers go back for reuse.
    pub(crate) free: Sender<Vec<u8>>,
    pub(crate) out: BufWriter<Box<dyn Write + Send>>,
    pub(crate) flush_interval: Duration,
}

impl WriterLoop {
    /// Runs until every sender is gone, then flushes.
    pub(crate) fn run(mut self) {
        // When the oldest unflushed byte was written; None when clean.
        let mut dirty_since: Option<Instant> = None;
        let mut failing = false;
        loop {
            let msg = match dirty_since {
                None => match self.rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
                Some(t) => match self.rx.recv_deadline(t + self.flush_interval) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        let r = self.out.flush();
                        report(&mut failing, r);
                        dirty_since = None;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            match msg {
                Msg::Line(mut line) => {
                    let r = self.out.write_all(&line);
                    report(&mut failing, r);
                    dirty_since.get_or_insert_with(Instant::now);
                    if line.capacity() <= MAX_RECYCLED_CAPACITY {
                        line.clear();
                        let _ = self.free.try_send(line);
                    }
                }
                Msg::Flush(ack) => {
                    let r = self.out.flush();
                    dirty_since = None;
                    let _ = ack.send(r);
                }
            }
        }
        let r = self.out.flush();
        report(&mut failing, r);
    }
}

/// Logs the first error of a run of failures, and the recovery, not each one:
/// a full disk would otherwise flood the process log.
fn report(failing: &mut bool, r: io::Result<()>) {
    match r {
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(error = %e, "access log write failed; lines are being lost");
        }
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!("access log writes recovered");
        }
        _ => {}
    }
}
