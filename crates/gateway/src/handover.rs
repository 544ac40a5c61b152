//! Zero-downtime binary upgrade: the running process hands its listening sockets to a new
//! one over a Unix socket (`SCM_RIGHTS`), so no connection waiting in an accept queue is
//! reset (closing a `SO_REUSEPORT` listener would reset them).
//!
//! ```text
//! new process                      old process (serving, listening on the upgrade socket)
//!   connect ──── "GIVE\n" ────────►
//!           ◄─── addresses + fds ── (the same sockets, duplicated into the new process)
//!   serve on them
//!           ──── "READY\n" ───────► stop accepting, drain in-flight requests, exit
//!   listen on the upgrade socket for the next upgrade
//! ```

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::sync::Notify;

use crate::control::Control;

/// The most sockets one handover carries (listeners plus the admin listener).
const MAX_FDS: usize = 64;
const GIVE: &[u8] = b"GIVE\n";
const READY: &[u8] = b"READY\n";
/// How long either side waits for the other at each step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A handover failed; the old process keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// A socket operation failed.
    #[error("binary upgrade: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// The other side said something unexpected.
    #[error("binary upgrade: {0}")]
    Protocol(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> HandoverError {
    move |source| HandoverError::Io { what, source }
}

/// Listening sockets received from the previous process, by address.
#[derive(Debug, Default)]
pub struct Inherited {
    listeners: HashMap<SocketAddr, std::net::TcpListener>,
    peer: Option<UnixStream>,
}

impl Inherited {
    /// Takes the inherited socket bound to `addr`, if the old process had one.
    pub fn take(&mut self, addr: SocketAddr) -> Option<std::net::TcpListener> {
        self.listeners.remove(&addr)
    }

    /// Tells the old process the new one is serving: it stops accepting and drains.
    fn ready(&mut self) -> Result<(), HandoverError> {
        if let Some(mut peer) = self.peer.take() {
            peer.write_all(READY).map_err(io("sending READY"))?;
        }
        Ok(())
    }
}

/// Connects to the running process's upgrade socket and receives its listening sockets.
pub async fn take_over(path: &Path) -> Result<Inherited, HandoverError> {
    let path = path.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || -> Result<Inherited, HandoverError> {
        let mut peer =
            UnixStream::connect(&path).map_err(io("connecting to the upgrade socket"))?;
        peer.set_read_timeout(Some(STEP_TIMEOUT))
            .map_err(io("setting a timeout"))?;
        peer.write_all(GIVE).map_err(io("asking for the sockets"))?;
        let received = recv_fds(&peer)?;
        let listeners = received
            .into_iter()
            .map(|(addr, fd)| {
                let l = std::net::TcpListener::from(fd);
                l.set_nonblocking(true)
                    .map_err(io("making an inherited socket non-blocking"))?;
                Ok((addr, l))
            })
            .collect::<Result<_, HandoverError>>()?;
        Ok(Inherited {
            listeners,
            peer: Some(peer),
        })
    })
    .await;
    joined.map_err(|e| HandoverError::Protocol(format!("handover task failed: {e}")))?
}

/// The old process's side: serves the upgrade socket at `path`; after a successful handover
/// `done` is notified (the caller then drains and exits).
pub fn serve(
    control: Weak<Control>,
    admin: Option<(SocketAddr, Arc<OwnedFd>)>,
    path: PathBuf,
    done: Arc<Notify>,
) -> Result<(), HandoverError> {
    // A socket file left by a process that is gone, or by the process this one just took
    // over from (it stops listening once it has handed over), would make bind fail.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(io("binding the upgrade socket"))?;
    std::thread::Builder::new()
        .name("sekisho-upgrade".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let Some(c) = control.upgrade() else { return };
                match give(&c, admin.as_ref(), conn) {
                    Ok(()) => {
                        tracing::info!("binary upgrade: sockets handed over; draining");
                        done.notify_one();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "binary upgrade failed; still serving"),
                }
            }
        })
        .map_err(io("starting the upgrade thread"))?;
    Ok(())
}

fn give(
    control: &Control,
    admin: Option<&(SocketAddr, Arc<OwnedFd>)>,
    mut peer: UnixStream,
) -> Result<(), HandoverError> {
    peer.set_read_timeout(Some(STEP_TIMEOUT))
        .map_err(io("setting a timeout"))?;
    let mut ask = [0u8; 5];
    peer.read_exact(&mut ask)
        .map_err(io("reading the request"))?;
    if ask != GIVE {
        return Err(HandoverError::Protocol(
            "unexpected request on the upgrade socket".into(),
        ));
    }
    let mut sockets = control.listener_fds();
    if let Some((addr, fd)) = admin {
        sockets.push((*addr, fd.clone()));
    }
    send_fds(&peer, &sockets)?;
    let mut ready = [0u8; 6];
    peer.read_exact(&mut ready)
        .map_err(io("waiting for READY"))?;
    if ready != READY {
        return Err(HandoverError::Protocol(
            "the new process did not confirm".into(),
        ));
    }
    Ok(())
}

fn send_fds(
    peer: &UnixStream,
    sockets: &[(SocketAddr, Arc<OwnedFd>)],
) -> Result<(), HandoverError> {
    if sockets.len() > MAX_FDS {
        return Err(HandoverError::Protocol(format!(
            "more than {MAX_FDS} listeners"
        )));
    }
    let addrs: Vec<String> = sockets.iter().map(|(a, _)| a.to_string()).collect();
    let mut msg = serde_json::to_vec(&addrs).map_err(|e| HandoverError::Protocol(e.to_string()))?;
    msg.push(b'\n');
    let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|(_, fd)| fd.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(HandoverError::Protocol(
            "too many sockets for one message".into(),
        ));
    }
    sendmsg(
        peer,
        &[IoSlice::new(&msg)],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| HandoverError::Io {
        what: "sending the sockets",
        source: e.into(),
    })?;
    Ok(())
}

fn recv_fds(peer: &UnixStream) -> Result<Vec<(SocketAddr, OwnedFd)>, HandoverError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        peer,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| HandoverError::Io {
        what: "receiving the sockets",
        source: e.into(),
    })?;
    let fds: Vec<OwnedFd> = control
        .drain()
        .filter_map(|m| match m {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds.collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    let text = buf.get(..got.bytes).unwrap_or_default();
    let addrs: Vec<String> = serde_json::from_slice(text.strip_suffix(b"\n").unwrap_or(text))
        .map_err(|e| HandoverError::Protocol(format!("bad socket list: {e}")))?;
    if addrs.len() != fds.len() {
        return Err(HandoverError::Protocol(format!(
            "{} addresses but {} sockets",
            addrs.len(),
            fds.len()
        )));
    }
    addrs
        .iter()
        .zip(fds)
        .map(|(a, fd)| {
            let addr = a
                .parse()
                .map_err(|_| HandoverError::Protocol(format!("bad address {a:?}")))?;
            Ok((addr, fd))
        })
        .collect()
}

/// Finishes the new process's side: confirms to the old process, then takes over the
/// upgrade socket for the next upgrade.
pub fn complete(inherited: &mut Inherited) -> Result<(), HandoverError> {
    inherited.ready()
}
