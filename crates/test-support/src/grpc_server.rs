//! A real gRPC server (Python `grpcio`) on a loopback port, and descriptor sets built
//! with `protoc`: a transport nobody here wrote.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const INSTALL: &str = "scripts/test.sh installs them (python3 -m pip install grpcio grpcio-tools \
     googleapis-common-protos; apt-get install protobuf-compiler)";

/// A running `python3 server.py --port P`; killed by PID on drop.
///
/// The server also exits when its stdin closes, so it never outlives the test binary.
pub struct GrpcServer {
    child: Child,
    addr: SocketAddr,
}

/// Panics (never skips) unless python3 can import grpcio, grpcio-tools and the
/// googleapis protos.
pub fn require_python_grpc() {
    let out = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, google.api"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import grpc/grpc_tools/google.api ({}): {INSTALL}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("python3 is missing ({e}): {INSTALL}"),
    }
}

/// The directory holding `google/api/*.proto` (PyPI's googleapis-common-protos).
pub fn googleapis_proto_dir() -> PathBuf {
    require_python_grpc();
    let out = Command::new("python3")
        .args([
            "-c",
            "import google.api, os; print(os.path.dirname(os.path.dirname(list(google.api.__path__)[0])))",
        ])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "cannot locate google/api protos: {INSTALL}"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs `protoc --include_imports --descriptor_set_out` on `proto` (relative to
/// `proto_dir`) and returns the descriptor set's bytes.
pub fn build_descriptor_set(proto_dir: &Path, proto: &str) -> Vec<u8> {
    let api = googleapis_proto_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("descriptors.pb");
    let status = Command::new("protoc")
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg("-I")
        .arg(proto_dir)
        .arg("-I")
        .arg(&api)
        .arg(proto)
        .status()
        .unwrap_or_else(|e| panic!("protoc is missing ({e}): {INSTALL}"));
    assert!(status.success(), "protoc failed on {proto}");
    std::fs::read(&out).expect("read descriptor set")
}

impl GrpcServer {
    /// Starts `python3 <server_py> --port P` and waits (at most 60 s) until it accepts
    /// connections.
    pub async fn start(server_py: &Path) -> GrpcServer {
        require_python_grpc();
        let addr = crate::free_addr();
        let mut child = Command::new("python3")
            .arg(server_py)
            .arg("--port")
            .arg(addr.port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn python3 {}: {e}: {INSTALL}", server_py.display()));
        let ready = crate::eventually(Duration::from_secs(60), || async {
            tokio::net::TcpStream::connect(addr).await.is_ok()
        })
        .await;
        if !ready {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "{} did not listen on {addr} within 60 s (exit: {status:?})",
                server_py.display()
            );
        }
        GrpcServer { child, addr }
    }

    /// The address it serves h2c on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
