//! An upstream that answers with exact bytes, for framing cases a well-behaved server
//! library never produces: close-delimited bodies, extra bytes after a body, closing a
//! keep-alive connection without answering, malformed heads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the upstream does with one request.
pub enum Answer {
    /// Write these bytes, keep the connection for the next request.
    Bytes(Vec<u8>),
    /// Write these bytes, then close.
    BytesThenClose(Vec<u8>),
    /// Close without answering.
    Close,
}

impl Answer {
    /// `HTTP/1.1 200 OK` with `Content-Length` and `body`, kept open.
    pub fn ok(body: &str) -> Answer {
        Answer::Bytes(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// One request as received: the head as text and the body.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub head: String,
    pub body: Vec<u8>,
    /// Which connection (0-based, in accept order) and which request on it (0-based).
    pub conn: usize,
    pub index: usize,
}

type Script = Arc<dyn Fn(&RawRequest) -> Answer + Send + Sync>;

/// A running scripted upstream; stops when dropped.
pub struct RawUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<RawRequest>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawUpstream {
    /// Answers every request with `script`'s answer.
    pub async fn start(script: impl Fn(&RawRequest) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let script: Script = Arc::new(script);
        let task = {
            let (seen, connections) = (seen.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let conn = connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, conn, script.clone(), seen.clone()));
                }
            })
        };
        RawUpstream {
            addr,
            seen,
            connections,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<RawRequest> {
        self.seen.lock().expect("lock").clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    conn: usize,
    script: Script,
    seen: Arc<Mutex<Vec<RawRequest>>>,
) {
    let mut buf = Vec::new();
    let mut index = 0;
    loop {
        let Some(req) = read_request(&mut stream, &mut buf, conn, index).await else {
            return;
        };
        index += 1;
        let answer = script(&req);
        seen.lock().expect("lock").push(req);
        match answer {
            Answer::Bytes(b) => {
                if stream.write_all(&b).await.is_err() {
                    return;
                }
            }
            Answer::BytesThenClose(b) => {
                let _ = stream.write_all(&b).await;
                let _ = stream.shutdown().await;
                return;
            }
            Answer::Close => return,
        }
    }
}

/// Reads one request (head, then a `Content-Length` body); `None` at EOF.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    conn: usize,
    index: usize,
) -> Option<RawRequest> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some(RawRequest {
                head,
                body,
                conn,
                index,
            });
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
