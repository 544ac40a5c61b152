#!/usr/bin/env python3
"""The egress proxy's headline measurement: a call to a distant HTTPS origin.

Builds the distance on one machine with the delay relay (crates/egress/src/bin/delay-relay.rs,
9 ms each way = 18 ms round trip), puts nginx behind it as the HTTPS origin (self-signed CA
generated here; one server with HTTP/2 + HTTP/1.1 by ALPN, one HTTP/1.1 only), and measures
per-request latency with curl:

  (a) one request on a warm HTTPS keep-alive connection through the relay: one round
      trip plus server time, the physical limit;
  (b) a new HTTPS connection per request through the relay (TLS 1.3, and TLS 1.2 forced);
  (c) the same client through `sekisho egress` (plain HTTP on loopback, Host convention),
      whose warm pool reaches the origin through the relay, over an HTTP/1.1 and an
      HTTP/2 upstream; the egress metrics give the upstream connections opened.

Usage: bench/egress.py [--requests N] [--delay-ms 9] [--out bench/results/egress.md]
Needs: release binaries (cargo build --release -p sekisho -p sekisho-egress --bins),
nginx, curl, openssl. Everything listens on 127.0.0.1; every process started is stopped by PID.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
NGINX = "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120, **kw)


def make_certs(d):
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=egress bench CA", "-keyout", f"{d}/ca.key",
         "-out", f"{d}/ca.pem"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/origin.key", "-out", f"{d}/origin.csr"])
    Path(f"{d}/ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", f"{d}/origin.csr", "-CA", f"{d}/ca.pem",
         "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext.cnf",
         "-out", f"{d}/origin.pem"])


def nginx_conf(d, h2_port, h1_port):
    ssl = (f"ssl_certificate {d}/origin.pem; ssl_certificate_key {d}/origin.key; "
           "ssl_protocols TLSv1.2 TLSv1.3; keepalive_requests 100000; keepalive_timeout 300s;")
    body = 'location / { return 200 "ok\\n"; }'
    return f"""daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  default_type text/plain;
  server {{ listen 127.0.0.1:{h2_port} ssl http2; {ssl} {body} }}
  server {{ listen 127.0.0.1:{h1_port} ssl; {ssl} {body} }}
}}
"""


def curl_times(urls, extra, reuse):
    """Per-request time_total in ms. reuse=True: one curl process, one connection for all URLs
    (the first, which pays the connects, is dropped). reuse=False: one process per request."""
    fmt = ["-s", "-w", "%{time_total} %{http_code} %{http_version}\\n"]
    if reuse:
        # One `-o /dev/null` per URL: curl pairs them in order.
        targets = [x for u in urls for x in ("-o", "/dev/null", u)]
        out = run(["curl", *fmt, *extra, *targets]).stdout.split("\n")
        rows = [l.split() for l in out if l.strip()][1:]
    else:
        rows = []
        for u in urls:
            out = run(["curl", *fmt, "-o", "/dev/null", *extra, u]).stdout
            rows += [l.split() for l in out.split("\n") if l.strip()]
    bad = [r for r in rows if r[1] != "200"]
    if bad:
        raise RuntimeError(f"non-200 answers: {bad[:3]}")
    return [float(r[0]) * 1000 for r in rows], sorted({r[2] for r in rows})


def summary(ms):
    s = sorted(ms)
    p90 = s[min(len(s) - 1, int(0.9 * len(s)))]
    return statistics.median(s), p90, statistics.mean(s)


def metric(egress_port, name, dest):
    text = run(["curl", "-s", f"http://127.0.0.1:{egress_port}/.api/metrics"]).stdout
    for line in text.splitlines():
        if line.startswith(f'{name}{{destination="{dest}"}}'):
            return line.rsplit(" ", 1)[1]
    return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--delay-ms", type=float, default=9.0)
    ap.add_argument("--out", default=str(ROOT / "bench/results/egress.md"))
    args = ap.parse_args()
    n, delay = args.requests, args.delay_ms
    # `sekisho egress`, or the egress crate's example binary (same flags, same code) when
    # EGRESS_CMD names it, e.g. EGRESS_CMD="$CARGO_TARGET_DIR/release/examples/egress".
    egress_cmd_base = os.environ.get("EGRESS_CMD", f"{TARGET / 'release/sekisho'} egress").split()
    relay_bin = TARGET / "release/delay-relay"
    for b in (Path(egress_cmd_base[0]), relay_bin):
        if not b.exists():
            sys.exit(f"{b} is missing: cargo build --release -p sekisho -p sekisho-egress --bins")
    for tool in ("curl", "openssl", NGINX):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required")

    procs = []
    d = tempfile.mkdtemp(prefix="egress-bench-")
    try:
        make_certs(d)
        h2_port, h1_port = free_port(), free_port()
        Path(f"{d}/nginx.conf").write_text(nginx_conf(d, h2_port, h1_port))
        procs.append(subprocess.Popen([NGINX, "-c", f"{d}/nginx.conf", "-p", d, "-e", f"{d}/error.log"]))
        wait_port(h2_port)
        wait_port(h1_port)
        relays = {}
        for name, port in (("h2", h2_port), ("h1", h1_port)):
            rp = free_port()
            procs.append(subprocess.Popen([str(relay_bin), "--listen", f"127.0.0.1:{rp}",
                                           "--target", f"127.0.0.1:{port}", "--delay-ms", str(delay)],
                                          stderr=subprocess.DEVNULL))
            wait_port(rp)
            relays[name] = rp
        ep = free_port()
        egress_cmd = [*egress_cmd_base, "-p", str(ep), "-c", "8", "--ca-file", f"{d}/ca.pem",
                      "--access-log-dir", "none"]
        procs.append(subprocess.Popen(egress_cmd, stderr=subprocess.DEVNULL))
        wait_port(ep)

        ca = ["--cacert", f"{d}/ca.pem"]
        rows, raw, failed = [], [], []

        def measure(label, urls, extra, reuse, note=""):
            ms, versions = curl_times(urls, extra, reuse)
            med, p90, mean = summary(ms)
            rows.append((label, len(ms), med, p90, mean, "/".join(versions), note))
            raw.append(f"{label}: " + " ".join(f"{x:.2f}" for x in ms))
            print(f"{label:<60} median {med:7.2f} ms  p90 {p90:7.2f}  mean {mean:7.2f}", flush=True)

        direct_h1 = f"https://127.0.0.1:{relays['h1']}/"
        measure("(a) warm HTTPS keep-alive connection through the relay", [direct_h1] * (n + 1),
                ca + ["--http1.1"], True)
        measure("(b) new HTTPS connection per request (TLS 1.3)", [direct_h1] * n,
                ca + ["--http1.1"], False)
        measure("(b) new HTTPS connection per request (TLS 1.2 forced)", [direct_h1] * n,
                ca + ["--http1.1", "--tlsv1.2", "--tls-max", "1.2"], False)
        for name, proto in (("h1", "HTTP/1.1"), ("h2", "HTTP/2")):
            host = f"127.0.0.1.ccnproxy-https:{relays[name]}"
            dest = f"https://127.0.0.1:{relays[name]}"
            url = f"http://127.0.0.1:{ep}/"
            # Warm the pool (one request opens the upstream connection), then measure.
            run(["curl", "-s", "-o", "/dev/null", "-H", f"Host: {host}", url])
            label = f"(c) through sekisho egress, warm pool, {proto} upstream"
            try:
                measure(label, [url] * (n + 1), ["-H", f"Host: {host}"], True,
                        note=f"upstream connections opened: "
                             f"{metric(ep, 'sekisho_egress_upstream_connections_opened_total', dest)}")
                rows[-1] = rows[-1][:6] + (rows[-1][6] + f" for {n + 2} requests",)
            except RuntimeError as e:
                # Recorded, not hidden: the table says this row failed and why.
                print(f"{label}: FAILED {e}", flush=True)
                failed.append(f"{label}: FAILED ({e})")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)

    rtt = 2 * delay
    commit = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip()
    a_med = rows[0][2]
    lines = [
        "# Egress proxy: a call to a distant HTTPS origin",
        "",
        f"Commit `{commit}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs (shared with other builds). Delay relay {delay:g} ms each way "
        f"(round trip {rtt:g} ms); nginx 1.22 origin, TLS by OpenSSL; client curl; "
        f"{n} requests per row (medians in ms).",
        "",
        "| case | requests | median | p90 | mean | client sees | notes |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for label, count, med, p90, mean, ver, note in rows:
        lines.append(f"| {label} | {count} | {med:.2f} | {p90:.2f} | {mean:.2f} | HTTP/{ver} | {note} |")
    c_rows = [r for r in rows if r[0].startswith("(c)")]
    lines += ["", *[f"- {f}" for f in failed]] if failed else []
    b13 = rows[1][2]
    lines += [
        "",
        f"- One round trip plus server time, (a): {a_med:.2f} ms; target for (c): within 1.2x = {1.2 * a_med:.2f} ms.",
    ]
    for r in c_rows:
        lines.append(f"- {r[0]}: {r[2]:.2f} ms = {r[2] / a_med:.2f}x (a), {b13 / r[2]:.1f}x faster than (b) TLS 1.3.")
    lines += [
        "",
        "## Commands",
        "",
        "```",
        "cargo build --release -p sekisho -p sekisho-egress --bins",
        f"bench/egress.py --requests {n} --delay-ms {delay:g}",
        "# inside: delay-relay --listen 127.0.0.1:R --target 127.0.0.1:NGINX --delay-ms 9",
        f"#         {' '.join(Path(x).name if '/' in x else x for x in egress_cmd_base)} -p P -c 8 --ca-file ca.pem --access-log-dir none",
        "#         curl -H 'Host: 127.0.0.1.ccnproxy-https:R' http://127.0.0.1:P/   (c)",
        "#         curl --cacert ca.pem --http1.1 [--tlsv1.2 --tls-max 1.2] https://127.0.0.1:R/   (a), (b)",
        "```",
        "",
        "## Raw per-request times (ms)",
        "",
        "```",
        *raw,
        "```",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
