#!/usr/bin/env bash
# Runs every test of sekisho. Installs the system packages the tests start as real servers
# (nginx, dnsmasq, ...) when missing, non-interactively, then checks formatting and lints
# and runs the whole suite. A missing tool is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# command:package pairs the test harness starts.
pkgs=(
  "nginx:nginx-light"
  "dnsmasq:dnsmasq-base"
  "protoc:protobuf-compiler"
  "redis-server:redis-server"
  "memcached:memcached"
  "update-ca-certificates:ca-certificates"
)
missing=()
for pair in "${pkgs[@]}"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("$pkg")
  fi
done
# protoc's well-known types (google/protobuf/*.proto) come with libprotobuf-dev, which
# protobuf-compiler only recommends: the transcoding tests' protos import them.
if [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
  missing+=("libprotobuf-dev")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The transcoding tests' real gRPC server (Python grpcio) and the google/api protos.
if ! python3 -c 'import grpc, grpc_tools, google.api' >/dev/null 2>&1; then
  echo "test.sh: installing grpcio grpcio-tools googleapis-common-protos" >&2
  python3 -m pip install --quiet grpcio grpcio-tools googleapis-common-protos
fi

for tool in cargo rustfmt cargo-clippy; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test.sh: $tool is required (rustup component)" >&2; exit 1; }
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked "$@"
