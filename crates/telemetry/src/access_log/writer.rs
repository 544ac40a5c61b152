//! The dedicated thread that batches log lines into a `BufWriter`.
//!
//! A plain thread, not a tokio task: writes to a file or a pipe block, and
//! the log must still drain while the runtime is shutting down.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// Buffers bigger than this are freed rather than recycled, so one huge
/// line does not pin its memory forever.
pub(crate) const MAX_RECYCLED_CAPACITY: usize = 64 * 1024;

pub(crate) enum Msg {
    /// Whole formatted lines, newlines included.
    Chunk(Vec<u8>),
    /// `pending` got its first line: pick it up within the flush interval.
    Wake,
    /// Write and flush everything logged so far, then answer.
    Flush(Sender<io::Result<()>>),
}

/// The chunk the request path is filling.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) buf: Vec<u8>,
    pub(crate) lines: u64,
    /// The writer has been told there is something to pick up (cleared when it does).
    pub(crate) wake_sent: bool,
}

pub(crate) struct WriterLoop {
    pub(crate) rx: Receiver<Msg>,
    pub(crate) pending: Arc<Mutex<Pending>>,
    /// Where emptied line buffers go back for reuse.
    pub(crate) free: Sender<Vec<u8>>,
    pub(crate) out: BufWriter<Box<dyn Write + Send>>,
    pub(crate) flush_interval: Duration,
}

impl WriterLoop {
    /// Runs until every sender is gone, then flushes.
    pub(crate) fn run(mut self) {
        // When the oldest unwritten or unflushed line was logged; None when clean.
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
                        let acks = self.pick_up(&mut failing);
                        let r = self.out.flush();
                        answer(acks, &r);
                        report(&mut failing, r);
                        dirty_since = None;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            match msg {
                Msg::Chunk(chunk) => {
                    self.write(chunk, &mut failing);
                    dirty_since.get_or_insert_with(Instant::now);
                }
                Msg::Wake => {
                    dirty_since.get_or_insert_with(Instant::now);
                }
                Msg::Flush(ack) => {
                    let mut acks = self.pick_up(&mut failing);
                    acks.push(ack);
                    let r = self.out.flush();
                    answer(acks, &r);
                    report(&mut failing, r);
                    dirty_since = None;
                }
            }
        }
        self.pick_up(&mut failing);
        let r = self.out.flush();
        report(&mut failing, r);
    }

    /// Writes the chunk being filled, after the chunks queued before it; returns the flush
    /// requests met on the way (answered once the flush is done).
    fn pick_up(&mut self, failing: &mut bool) -> Vec<Sender<io::Result<()>>> {
        let (current, queued) = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.lines = 0;
            p.wake_sent = false;
            let current = std::mem::take(&mut p.buf);
            // Under the lock: a chunk sent before we took `pending` is older than it.
            let queued: Vec<Msg> = self.rx.try_iter().collect();
            (current, queued)
        };
        let mut acks = Vec::new();
        for msg in queued {
            match msg {
                Msg::Chunk(chunk) => self.write(chunk, failing),
                Msg::Wake => {}
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        if !current.is_empty() {
            self.write(current, failing);
        }
        acks
    }

    fn write(&mut self, mut chunk: Vec<u8>, failing: &mut bool) {
        let r = self.out.write_all(&chunk);
        report(failing, r);
        if chunk.capacity() <= MAX_RECYCLED_CAPACITY {
            chunk.clear();
            let _ = self.free.try_send(chunk);
        }
    }
}

fn answer(acks: Vec<Sender<io::Result<()>>>, r: &io::Result<()>) {
    for ack in acks {
        let reply = match r {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        let _ = ack.send(reply);
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
