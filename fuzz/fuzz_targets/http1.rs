//! The HTTP/1 request path: arbitrary bytes written to a live gateway (routing, normalization,
//! framing checks, a direct response, a proxied route to a local upstream). A panic anywhere
//! aborts the process (libFuzzer's panic hook), which is what this target looks for.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fn gateway() -> SocketAddr {
    static GW: OnceLock<SocketAddr> = OnceLock::new();
    *GW.get_or_init(|| {
        // A libFuzzer binary starts from libFuzzer's C main, not Rust's, so SIGPIPE is not
        // ignored as in `sekisho` itself: a write (hyper uses writev) to a socket the peer
        // closed would kill the process instead of returning EPIPE.
        // SAFETY: setting a signal disposition to SIG_IGN before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let addr = rt.block_on(async {
            let up = sekisho_test_support::upstream::Upstream::named("up").await;
            let yaml = include_str!("../http1-gateway.yaml").replace("UPSTREAM", &up.addr().to_string());
            let config = sekisho_config::parse_str(&yaml, std::path::Path::new(".")).expect("config");
            let gw = sekisho_gateway::Gateway::start(config).await.expect("gateway");
            let addr = gw.listener_addr("public").expect("addr");
            // Both live for the whole fuzzing process.
            std::mem::forget(gw);
            std::mem::forget(up);
            addr
        });
        std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
        addr
    })
}

fuzz_target!(|data: &[u8]| {
    let addr = gateway();
    let Ok(mut s) = TcpStream::connect(addr) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.write_all(data);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
});
