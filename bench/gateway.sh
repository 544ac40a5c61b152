#!/bin/sh
# Reverse-proxy benchmark: sekisho vs nginx vs HAProxy. See bench/README.md.
#   bench/gateway.sh                 # full run: 5 rounds x 10 s, writes bench/results/gateway.{md,json}
#   bench/gateway.sh --quick         # smoke run: 2 rounds x 2 s
#   bench/gateway.sh --help          # all flags
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v python3 >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y python3
fi
exec python3 "$here/gateway.py" "$@"
