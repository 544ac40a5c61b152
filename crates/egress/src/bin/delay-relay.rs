//! `delay-relay`: a TCP relay between two loopback ports that holds every chunk for a fixed
//! one-way delay, in order, each connection and direction on its own tasks: distance in user
//! space, for benchmarks on machines without `netem`.
//!
//! ```text
//! delay-relay --listen 127.0.0.1:9443 --target 127.0.0.1:8443 --delay-ms 9
//! ```
//!
//! Each direction is a reader that stamps chunks with `now + delay` and a writer that sends
//! each chunk when its time comes, so bandwidth is not limited by the delay (a pipe, not a
//! stop-and-wait link). A FIN is relayed after the same delay.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Relays TCP from `--listen` to `--target`, delaying each direction by `--delay-ms`.
#[derive(Parser, Debug)]
#[command(name = "delay-relay", version)]
struct Args {
    /// Address to accept on (loopback).
    #[arg(long)]
    listen: SocketAddr,
    /// Address to forward to.
    #[arg(long)]
    target: SocketAddr,
    /// One-way delay in milliseconds (fractions allowed).
    #[arg(long, default_value_t = 9.0)]
    delay_ms: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("delay-relay: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(relay(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("delay-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn relay(args: Args) -> std::io::Result<()> {
    let delay = Duration::from_secs_f64(args.delay_ms.max(0.0) / 1000.0);
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!(
        "delay-relay: {} -> {} with {:?} each way",
        listener.local_addr()?,
        args.target,
        delay
    );
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("delay-relay: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let target = args.target;
        tokio::spawn(async move {
            // The connect itself crosses the "distance": the SYN goes out now, the
            // SYN-ACK comes back a round trip later.
            tokio::time::sleep(delay).await;
            let server = match TcpStream::connect(target).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("delay-relay: connect {target}: {e}");
                    return;
                }
            };
            tokio::time::sleep(delay).await;
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(direction(cr, sw, delay));
            tokio::spawn(direction(sr, cw, delay));
        });
    }
}

/// One direction: chunks leave `delay` after they arrived, in order.
async fn direction(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        let due = Instant::now() + delay;
        let chunk = (n > 0).then(|| buf.get(..n).unwrap_or_default().to_vec());
        let eof = chunk.is_none();
        if tx.send((due, chunk)).is_err() || eof {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
