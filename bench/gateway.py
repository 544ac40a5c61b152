#!/usr/bin/env python3
"""Reverse-proxy benchmark: sekisho against nginx and HAProxy in front of one origin.

Layout (the same for every proxy): the load generator (wrk, one thread) is pinned to
one core, the proxy and the origin (nginx, one worker) share another core. Every proxy
runs one worker and keeps connections to the origin alive. Runs are interleaved: each
round runs every target once, in an order rotated per round, so slow drift of the
machine (other tenants, steal) spreads over all targets instead of hitting one.

Per run it records wrk's req/s and latency percentiles, the proxy's CPU time per request
(utime+stime from /proc/PID/stat, before/after, divided by completed requests), the
proxy's peak RSS during the run (VmHWM, reset before each run through clear_refs), the
steal time of the VM from /proc/stat, the CPU used by processes other than ours, and
checks that every request reached the origin (the origin's own request counter).

See bench/README.md. Usage: bench/gateway.sh [--quick] [--rounds N] [--duration S] ...
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
ALL_TARGETS = ["direct", "nginx", "haproxy", "sekisho", "sekisho-full"]
# With --baseline-bin: the same two sekisho layouts run from an older binary, for A/B
# comparisons of a change in the same run (same rounds, same machine state).
BASELINE_TARGETS = ["sekisho-base", "sekisho-full-base"]
PROXY_TARGETS = ["nginx", "haproxy", "sekisho", "sekisho-full"]
# Packages for a fresh Debian/Ubuntu machine: command -> package.
PACKAGES = {"nginx": "nginx-light", "haproxy": "haproxy", "wrk": "wrk", "taskset": "util-linux"}
SBIN_PATH = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])

COMMANDS: list[dict] = []  # every external command, in order, for the results file


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def which(cmd: str) -> str | None:
    return shutil.which(cmd) or shutil.which(cmd, path=SBIN_PATH)


def record(argv: list[str], purpose: str, env: dict | None = None, cwd: str | None = None) -> str:
    line = " ".join(shlex.quote(a) for a in argv)
    if env:
        line = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + line
    if cwd:
        line = f"(cd {shlex.quote(cwd)} && {line})"
    COMMANDS.append({"purpose": purpose, "command": line})
    return line


def capture(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        return r.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"<{e}>"


# ---------------------------------------------------------------------------
# processes we start: tracked by PID, all stopped on exit, error or signal

class Procs:
    def __init__(self) -> None:
        self.items: list[tuple[str, subprocess.Popen]] = []
        self.lock = threading.Lock()

    def start(self, name: str, argv: list[str], log_path: Path, purpose: str) -> subprocess.Popen:
        record(argv, purpose)
        fh = open(log_path, "wb")
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        fh.close()
        with self.lock:
            self.items.append((name, p))
        log(f"started {name} pid {p.pid}")
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)

    def stop_all(self) -> None:
        with self.lock:
            items = list(reversed(self.items))
            self.items.clear()
        for name, p in items:
            try:
                self.stop(p)
            except Exception as e:  # keep stopping the others
                log(f"stopping {name} pid {p.pid}: {e}")


PROCS = Procs()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------------------
# /proc readers

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, p: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"process {p.pid} exited with {p.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def proc_cpu_split(pid: int) -> tuple[int, int]:
    """(utime, stime) of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    return int(fields[11]), int(fields[12])


def proc_cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all threads), in clock ticks."""
    return sum(proc_cpu_split(pid))


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def reset_peak_rss(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def thread_affinity(pid: int) -> list[str]:
    cpus = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            cpus.add(",".join(str(c) for c in sorted(os.sched_getaffinity(int(tid)))))
    except OSError:
        pass
    return sorted(cpus)


def proc_stat() -> dict[str, list[int]]:
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                parts = line.split()
                out[parts[0]] = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal
    return out


def stat_delta(a: dict, b: dict, key: str) -> dict:
    d = [y - x for x, y in zip(a[key], b[key])]
    total = sum(d) or 1
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    return {"steal_pct": 100.0 * d[7] / total, "busy_ticks": busy, "total_ticks": sum(d),
            "idle_pct": 100.0 * (d[3] + d[4]) / total}


def stub_status(port: int) -> dict | None:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        body = c.getresponse().read().decode()
        c.close()
    except OSError:
        return None
    m = re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n", body)
    if not m:
        return None
    return {"accepts": int(m.group(1)), "requests": int(m.group(3))}


# ---------------------------------------------------------------------------
# wrk

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def to_ms(s: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", s)
    if not m:
        raise ValueError(f"bad wrk time {s!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    r: dict = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        r["requests"] = int(m.group(1))
        r["elapsed_s"] = to_ms(m.group(2) + m.group(3)) / 1000.0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for pct, val in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M):
        r[f"p{pct}_ms"] = to_ms(val)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(["connect", "read", "write", "timeout"], map(int, m.groups()))) if m else \
        {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non_2xx_3xx"] = int(m.group(1)) if m else 0
    return r


# ---------------------------------------------------------------------------
# configs

def origin_conf(d: Path, port: int, status_port: int) -> str:
    return f"""# origin: one nginx worker answering every path with a fixed body
daemon off;
master_process off;
worker_processes 1;
pid {d}/origin.pid;
error_log {d}/origin.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # keep-alive from the proxies is never cut by a request count (nginx default: 1000)
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path {d}/origin-tmp/body;
    proxy_temp_path {d}/origin-tmp/proxy;
    fastcgi_temp_path {d}/origin-tmp/fastcgi;
    uwsgi_temp_path {d}/origin-tmp/uwsgi;
    scgi_temp_path {d}/origin-tmp/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type text/plain;
            add_header X-Origin bench always;
            return 200 "ok\\n";
        }}
    }}
    # counters (accepted connections, requests) read by the harness before/after each run
    server {{
        listen 127.0.0.1:{status_port};
        location / {{ stub_status; }}
    }}
}}
"""


def nginx_conf(d: Path, port: int, origin_port: int) -> str:
    return f"""# nginx as reverse proxy: one worker, keep-alive pool to the origin
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path {d}/nginx-tmp/body;
    proxy_temp_path {d}/nginx-tmp/proxy;
    fastcgi_temp_path {d}/nginx-tmp/fastcgi;
    uwsgi_temp_path {d}/nginx-tmp/uwsgi;
    scgi_temp_path {d}/nginx-tmp/scgi;
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def haproxy_conf(d: Path, port: int, origin_port: int) -> str:
    return f"""# HAProxy as reverse proxy: one thread, HTTP mode, server connections reused
global
    nbthread 1
    maxconn 4096
    pidfile {d}/haproxy.pid
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s
frontend public
    bind 127.0.0.1:{port}
    default_backend origin
backend origin
    # idle server connections are kept (default purge delay 5 s would close them between runs)
    server origin 127.0.0.1:{origin_port} pool-purge-delay 300s
"""


def sekisho_conf(port: int, origin_port: int) -> str:
    return f"""# sekisho, minimal: one listener, one catch-all route, one cluster, no access log
listeners: [{{ name: public, listen: "127.0.0.1:{port}" }}]
access_log: {{ path: "off" }}
routes: [{{ name: origin, match: {{ path_prefix: / }}, cluster: origin }}]
# idle upstream connections kept 300 s, as for nginx and HAProxy (default 60 s would
# close the pool between this target's runs)
clusters: [{{ name: origin, endpoints: ["127.0.0.1:{origin_port}"], pool: {{ idle_timeout: 300s }} }}]
"""


SERVICES = ["accounts", "billing", "catalog", "cart", "checkout", "inventory", "shipping",
            "notifications", "recommendations", "pricing", "profile", "media"]


def sekisho_full_conf(d: Path, port: int, admin_port: int, origin_port: int, name: str = "sekisho-full") -> str:
    """A production-like config: JSON access log to a file, an admin listener, ~40 routes
    (exact hosts, a wildcard host, templates, prefixes, predicates, direct responses, a
    redirect, a catch-all) and several clusters. Every cluster points at the one origin.
    The benchmark request (Host api.example.com, GET /v1/items/12345) takes route `items`:
    host + template + method predicate, with request and response header edits."""
    o = f"127.0.0.1:{origin_port}"
    lines = [
        "# sekisho, production-like: access log to a file, admin listener, ~40 routes",
        f'admin: {{ listen: "127.0.0.1:{admin_port}" }}',
        f'access_log: {{ path: "{d}/{name}-access.log" }}',
        f'listeners: [{{ name: public, listen: "127.0.0.1:{port}" }}]',
        "routes:",
        '  - name: items',
        '    match: { host: api.example.com, path_template: "/v1/items/{id}", methods: [GET, HEAD] }',
        '    cluster: items',
        '    timeout: 5s',
        '    request_headers: { set: { x-gateway: sekisho }, remove: [x-internal-user] }',
        '    response_headers: { set: { cache-control: no-store } }',
        '  - name: items-write',
        '    match: { host: api.example.com, path_template: "/v1/items/{id}", methods: [PUT, PATCH, DELETE] }',
        '    cluster: items',
        '    buffer_request: { max_bytes: 1MiB }',
        '  - name: item-reviews',
        '    match: { host: api.example.com, path_template: "/v1/items/{id}/reviews/{review}" }',
        '    cluster: items',
        '  - name: items-list',
        '    match: { host: api.example.com, path: /v1/items }',
        '    cluster: items',
        '  - name: user-orders',
        '    match: { host: api.example.com, path_template: "/v1/users/{user}/orders/{order}" }',
        '    cluster: users',
        '  - name: users',
        '    match: { host: api.example.com, path_template: "/v1/users/{user}" }',
        '    cluster: users',
        '  - name: payments-prod',
        '    match: { host: api.example.com, path_prefix: /v1/payments/, methods: [GET, POST], headers: [{ name: x-env, value: prod }] }',
        '    cluster: payments',
        '    timeout: 3s',
        '  - name: payments',
        '    match: { host: api.example.com, path_prefix: /v1/payments/ }',
        '    cluster: payments',
        '  - name: search',
        '    match: { host: api.example.com, path: /v1/search, methods: [GET] }',
        '    cluster: search',
        '  - name: canary',
        '    match: { host: api.example.com, path_prefix: /v1/recommendations/ }',
        '    split: [{ cluster: search, weight: 5 }, { cluster: monolith, weight: 95 }]',
    ]
    for s in SERVICES:
        lines += [f"  - name: v2-{s}",
                  f"    match: {{ host: api.example.com, path_prefix: /v2/{s}/ }}",
                  f"    cluster: monolith",
                  f"    rewrite: {{ prefix: /{s}/ }}"]
    for s in SERVICES[:6]:
        lines += [f"  - name: partner-{s}",
                  f"    match: {{ host: partner.example.com, path_template: \"/{s}/{{id}}\" }}",
                  f"    cluster: monolith"]
    lines += [
        '  - name: files',
        '    match: { host: "*.example.com", path_template: "/files/{*rest}" }',
        '    cluster: static',
        '  - name: static',
        '    match: { host: www.example.com, path_prefix: /static/ }',
        '    cluster: static',
        '  - name: www',
        '    match: { host: www.example.com, path_prefix: / }',
        '    cluster: monolith',
        '  - name: admin-block',
        '    match: { path_prefix: /admin/ }',
        '    direct_response: { status: 403, body: "forbidden" }',
        '  - name: healthz',
        '    match: { path: /healthz }',
        '    direct_response: { status: 200, body: "ok" }',
        '  - name: old',
        '    match: { path: /old }',
        '    redirect: { location: "https://www.example.com/", status: 308, preserve_path: true }',
        '  - name: api',
        '    match: { host: api.example.com, path_prefix: / }',
        '    cluster: monolith',
        '  - name: catch-all',
        '    match: { path_prefix: / }',
        '    cluster: monolith',
        "clusters:",
    ]
    for c in ["items", "users", "payments", "search", "static", "monolith"]:
        lines.append(f'  - {{ name: {c}, endpoints: ["{o}"], pool: {{ max_idle: 64, idle_timeout: 300s }} }}')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------

def git_facts() -> dict:
    def g(*a):
        return capture(["git", "-C", str(REPO), *a])
    porcelain = g("status", "--porcelain")
    dirty = [l for l in porcelain.splitlines() if l.strip() and not l[3:].startswith("bench/")]
    return {"commit": g("rev-parse", "HEAD"), "subject": g("log", "-1", "--format=%s"),
            "dirty": bool(dirty), "dirty_paths": [l[3:] for l in dirty][:100],
            "dirty_count": len(dirty),
            "diff_sha256": hashlib.sha256((g("diff", "HEAD") + porcelain).encode()).hexdigest()[:16]}


def machine_facts() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = open("/proc/meminfo").readline().split(":", 1)[1].strip()
    except OSError:
        pass
    osrel = ""
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osrel = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(), "os": osrel,
        "mem_total": mem, "clk_tck": CLK_TCK, "hostname_hash": hashlib.sha256(platform.node().encode()).hexdigest()[:8],
        "nginx": capture([which("nginx") or "nginx", "-v"]),
        "haproxy": capture([which("haproxy") or "haproxy", "-v"]).splitlines()[0] if which("haproxy") else "missing",
        "wrk": capture(["wrk", "-v"]).splitlines()[0] if which("wrk") else "missing",
        "python": sys.version.split()[0],
        "rustc": capture(["rustc", "-V"]),
        "loadavg_at_start": open("/proc/loadavg").read().strip(),
    }


def ensure_packages(allow_install: bool) -> list[str]:
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if not which(cmd)})
    if not missing:
        return []
    if not allow_install:
        raise SystemExit(f"missing packages {missing} and --no-install given")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    for argv in (sudo + ["apt-get", "update"], sudo + ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
        log("running " + record(argv, "install missing packages", env=env))
        subprocess.run(argv, check=True, env={**os.environ, **env})
    still = [cmd for cmd in PACKAGES if not which(cmd)]
    if still:
        raise SystemExit(f"still missing after install: {still}")
    return missing


def build_sekisho(tmp: Path) -> dict:
    target_dir = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    argv = ["cargo", "build", "--release", "-p", "sekisho"]
    env = {"CARGO_TARGET_DIR": target_dir} if os.environ.get("CARGO_TARGET_DIR") else None
    log("building: " + record(argv, "build sekisho (release profile of the workspace)", env=env, cwd=str(REPO)))
    t0 = time.monotonic()
    build_log = tmp / "build.log"
    with open(build_log, "wb") as fh:
        r = subprocess.run(argv, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        tail = build_log.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"cargo build failed (exit {r.returncode}); run without sekisho with "
                         f"--targets direct,nginx,haproxy")
    return {"bin": str(Path(target_dir) / "release" / "sekisho"), "build_seconds": round(secs, 1)}


def sha256_file(p: str) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sanity_check(port: int, host: str, path: str) -> dict:
    """Two requests on one connection: status, body, origin marker, and what the proxy adds."""
    res = {"ok": False}
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for i in range(2):
            c.request("GET", path, headers={"Host": host})
            resp = c.getresponse()
            body = resp.read()
            res.update(status=resp.status, body=body.decode(errors="replace"),
                       headers=[f"{k}: {v}" for k, v in resp.getheaders()])
            if resp.status != 200 or body != b"ok\n" or resp.getheader("X-Origin") != "bench":
                res["error"] = f"request {i + 1}: status {resp.status}, body {body[:80]!r}, X-Origin {resp.getheader('X-Origin')!r}"
                return res
        c.close()
        res["ok"] = True
    except (OSError, http.client.HTTPException) as e:
        res["error"] = f"{type(e).__name__}: {e}"
    return res


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def tail(p: Path, n: int = 20) -> str:
    try:
        return "\n".join(ANSI.sub("", p.read_text(errors="replace")).splitlines()[-n:])
    except OSError:
        return ""


class Target:
    def __init__(self, name: str, port: int, proc: subprocess.Popen | None, start_cmd: str,
                 config: str | None, config_path: str | None, log_path: Path | None):
        self.name, self.port, self.proc, self.start_cmd = name, port, proc, start_cmd
        self.config, self.config_path, self.log_path = config, config_path, log_path
        self.sanity: dict = {}
        self.dead: str | None = None
        self.affinity: list[str] = []


def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", 10)), help="seconds per measured run (BENCH_DURATION, default 10)")
    ap.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", 5)), help="rounds; every target runs once per round (BENCH_ROUNDS, default 5)")
    ap.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", 50)), help="wrk connections (BENCH_CONNECTIONS, default 50)")
    ap.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", 3)), help="seconds of discarded warm-up per target (default 3)")
    ap.add_argument("--pause", type=float, default=float(env("BENCH_PAUSE", 1)), help="idle seconds between runs (default 1)")
    ap.add_argument("--targets", "--proxies", dest="targets", default=env("BENCH_TARGETS", ",".join(ALL_TARGETS)),
                    help=f"comma list from {','.join(ALL_TARGETS)} (BENCH_TARGETS; default all). 'direct' is wrk against the origin itself")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 rounds x 2 s, 1 s warm-up")
    ap.add_argument("--host", default=env("BENCH_HOST", "api.example.com"), help="Host header sent by wrk")
    ap.add_argument("--path", default=env("BENCH_PATH", "/v1/items/12345"), help="request path sent by wrk")
    ap.add_argument("--load-cpu", type=int, default=0, help="core for wrk (default 0)")
    ap.add_argument("--server-cpu", type=int, default=1, help="core for the proxy and the origin (default 1)")
    ap.add_argument("--sekisho-bin", default=env("SEKISHO_BIN"), help="use this binary, do not build")
    ap.add_argument("--baseline-bin", help="an older sekisho binary: enables targets sekisho-base and "
                    "sekisho-full-base (same configs), for A/B comparisons in one run")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build (uses $CARGO_TARGET_DIR/release/sekisho)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    ap.add_argument("--out", default=str(BENCH_DIR / "results" / "gateway"), help="results path without extension (default bench/results/gateway)")
    ap.add_argument("--note", action="append", default=[], help="free text added to the results (repeatable)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 2.0, 2, 1.0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t in BASELINE_TARGETS and not args.baseline_bin:
            ap.error(f"target {t!r} needs --baseline-bin")
        if t not in ALL_TARGETS + BASELINE_TARGETS:
            ap.error(f"unknown target {t!r}; choose from {ALL_TARGETS + BASELINE_TARGETS}")
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        ap.error("duration >= 1, rounds >= 1, connections >= 1")
    ncpu = os.cpu_count() or 1
    if max(args.load_cpu, args.server_cpu) >= ncpu or args.load_cpu == args.server_cpu:
        ap.error(f"--load-cpu and --server-cpu must be different cores below {ncpu}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="sekisho-bench-"))
    try:
        return run(args, targets, tmp)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping")
        return 130
    finally:
        PROCS.stop_all()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, targets: list[str], tmp: Path) -> int:
    started = _dt.datetime.now(_dt.timezone.utc)
    installed = ensure_packages(not args.no_install)
    git = git_facts()
    build = None
    want_sekisho = any(t.startswith("sekisho") for t in targets)
    sekisho_bin = args.sekisho_bin
    if want_sekisho and not sekisho_bin:
        if args.no_build:
            sekisho_bin = str(Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "sekisho")
        else:
            build = build_sekisho(tmp)
            sekisho_bin = build["bin"]
    sekisho_info = None
    if want_sekisho:
        if not os.access(sekisho_bin, os.X_OK):
            raise SystemExit(f"no sekisho binary at {sekisho_bin}")
        st = os.stat(sekisho_bin)
        sekisho_info = {"path": sekisho_bin, "sha256": sha256_file(sekisho_bin),
                        "mtime": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat(timespec="seconds"),
                        "version": capture([sekisho_bin, "--version"])}
    machine = machine_facts()
    nginx_bin, haproxy_bin = which("nginx"), which("haproxy")
    S = str(args.server_cpu)

    # -- origin
    origin_port, status_port = free_port(), free_port()
    ocfg = origin_conf(tmp, origin_port, status_port)
    (tmp / "origin-tmp").mkdir()
    (tmp / "origin.conf").write_text(ocfg)
    oproc = PROCS.start("origin", ["taskset", "-c", S, nginx_bin, "-p", str(tmp), "-c", str(tmp / "origin.conf"), "-e", str(tmp / "origin.error.log")],
                        tmp / "origin.out", "origin (nginx, 1 worker) on the server core")
    wait_listening(origin_port, oproc)
    wait_listening(status_port, oproc)
    origin_start = COMMANDS[-1]["command"]

    # -- targets
    objs: dict[str, Target] = {}
    for name in targets:
        if name == "direct":
            objs[name] = Target(name, origin_port, oproc, origin_start, None, None, None)
            continue
        port = free_port()
        logp = tmp / f"{name}.out"
        if name == "nginx":
            cfg = nginx_conf(tmp, port, origin_port)
            (tmp / "nginx-tmp").mkdir()
            cpath = tmp / "nginx.conf"
            argv = ["taskset", "-c", S, nginx_bin, "-p", str(tmp), "-c", str(cpath), "-e", str(tmp / "nginx.error.log")]
        elif name == "haproxy":
            cfg = haproxy_conf(tmp, port, origin_port)
            cpath = tmp / "haproxy.cfg"
            argv = ["taskset", "-c", S, haproxy_bin, "-db", "-f", str(cpath)]
        elif name in ("sekisho", "sekisho-base"):
            cfg = sekisho_conf(port, origin_port)
            cpath = tmp / f"{name}.yaml"
            binary = args.baseline_bin if name.endswith("-base") else sekisho_bin
            argv = ["taskset", "-c", S, binary, "serve", "-c", str(cpath), "--workers", "1"]
        else:  # sekisho-full, sekisho-full-base
            cfg = sekisho_full_conf(tmp, port, free_port(), origin_port, name)
            cpath = tmp / f"{name}.yaml"
            binary = args.baseline_bin if name.endswith("-base") else sekisho_bin
            argv = ["taskset", "-c", S, binary, "serve", "-c", str(cpath), "--workers", "1"]
        cpath.write_text(cfg)
        t = Target(name, port, None, "", cfg, str(cpath), logp)
        objs[name] = t
        if name.startswith("sekisho"):
            vargv = [sekisho_bin, "validate", "-c", str(cpath)]
            record(vargv, f"validate the {name} config")
            v = subprocess.run(vargv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            t.sanity["validate"] = f"exit {v.returncode}: {v.stdout.strip()}"
            if v.returncode != 0:
                t.dead = f"config rejected by `sekisho validate`: {v.stdout.strip()}"
                log(f"{name}: {t.dead}")
                continue
        try:
            t.proc = PROCS.start(name, argv, logp, f"{name} on the server core")
            t.start_cmd = COMMANDS[-1]["command"]
            wait_listening(port, t.proc)
        except RuntimeError as e:
            t.dead = f"did not start: {e}\n{tail(logp)}"
            log(f"{name}: {t.dead}")
    time.sleep(0.5)
    for t in objs.values():
        if t.dead:
            continue
        t.affinity = thread_affinity(t.proc.pid)
        t.sanity.update(sanity_check(t.port, args.host, args.path))
        log(f"{t.name}: sanity {'ok' if t.sanity.get('ok') else t.sanity.get('error')}; threads on cpus {t.affinity}")
    origin_affinity = thread_affinity(oproc.pid)

    url_of = lambda t: f"http://127.0.0.1:{t.port}{args.path}"
    wrk_cmd = lambda t, d: ["taskset", "-c", str(args.load_cpu), "wrk", "-t1", f"-c{args.connections}",
                            f"-d{int(d) if float(d).is_integer() else d}s", "--latency", "-H", f"Host: {args.host}", url_of(t)]
    for t in objs.values():
        record(wrk_cmd(t, args.duration), f"load against {t.name} (every measured run)")

    def one_run(t: Target, duration: float, rnd: int, pos: int, warm: bool) -> dict:
        rec: dict = {"target": t.name, "round": rnd, "position": pos, "warmup": warm}
        if t.dead:
            rec["skipped"] = t.dead.splitlines()[0]
            return rec
        if t.proc.poll() is not None:
            t.dead = f"process exited with {t.proc.returncode}\n{tail(t.log_path)}"
            rec["skipped"] = t.dead
            return rec
        pid = t.proc.pid
        rec["rss_reset"] = reset_peak_rss(pid)
        argv = wrk_cmd(t, duration)
        rec["command"] = " ".join(shlex.quote(a) for a in argv)
        rec["loadavg"] = open("/proc/loadavg").read().split()[0]
        u0 = proc_cpu_split(pid)
        s0, o0, st0 = sum(u0), proc_cpu_ticks(oproc.pid), stub_status(status_port)
        ps0, t0 = proc_stat(), time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with PROCS.lock:
            PROCS.items.append(("wrk", p))
        killer = threading.Timer(duration + 30, lambda: p.poll() is None and os.kill(p.pid, signal.SIGKILL))
        killer.start()
        out = p.stdout.read()
        p.stdout.close()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        killer.cancel()
        with PROCS.lock:
            PROCS.items = [(n, q) for n, q in PROCS.items if q is not p]
        wall, ps1 = time.monotonic() - t0, proc_stat()
        alive = t.proc.poll() is None
        u1 = proc_cpu_split(pid) if alive else u0
        s1 = sum(u1)
        o1, st1 = proc_cpu_ticks(oproc.pid), stub_status(status_port)
        rec["raw"] = out
        rec["wrk_exit"] = p.returncode
        rec.update(parse_wrk(out))
        if alive:
            rec.update({f"proxy_{k}": v for k, v in proc_status(pid).items()})
        else:
            t.dead = f"process exited with {t.proc.returncode} during the run\n{tail(t.log_path)}"
            rec["error"] = t.dead
        n = rec.get("requests") or 0
        wrk_ticks = (ru.ru_utime + ru.ru_stime) * CLK_TCK
        proxy_ticks, origin_ticks = s1 - s0, o1 - o0
        if t.name == "direct":
            proxy_ticks = 0  # the server is the origin itself
        rec["wall_s"] = wall
        rec["proxy_cpu_s"] = proxy_ticks / CLK_TCK
        rec["origin_cpu_s"] = origin_ticks / CLK_TCK
        rec["wrk_cpu_pct"] = 100.0 * (ru.ru_utime + ru.ru_stime) / wall
        if n:
            rec["proxy_cpu_us_per_req"] = 1e6 * proxy_ticks / CLK_TCK / n if t.name != "direct" else None
            if t.name != "direct":
                # User space vs kernel: the kernel part (loopback TCP, wakeups) is about the
                # same for every proxy; user space is where implementations differ.
                rec["proxy_user_us_per_req"] = 1e6 * (u1[0] - u0[0]) / CLK_TCK / n
                rec["proxy_sys_us_per_req"] = 1e6 * (u1[1] - u0[1]) / CLK_TCK / n
            rec["origin_cpu_us_per_req"] = 1e6 * origin_ticks / CLK_TCK / n
            rec["server_core_cpu_us_per_req"] = 1e6 * (proxy_ticks + origin_ticks) / CLK_TCK / n
        all_ = stat_delta(ps0, ps1, "cpu")
        rec["steal_pct"] = all_["steal_pct"]
        for c in (args.load_cpu, args.server_cpu):
            rec[f"steal_pct_cpu{c}"] = stat_delta(ps0, ps1, f"cpu{c}")["steal_pct"]
        rec["server_core_idle_pct"] = stat_delta(ps0, ps1, f"cpu{args.server_cpu}")["idle_pct"]
        other = all_["busy_ticks"] - wrk_ticks - proxy_ticks - origin_ticks
        rec["other_load_cores"] = max(0.0, other / CLK_TCK / wall)
        if st0 and st1:
            # the "after" stub_status query is itself one new connection and one request
            rec["origin_new_conns"] = st1["accepts"] - st0["accepts"] - 1
            rec["origin_requests"] = st1["requests"] - st0["requests"] - 1
        errs = sum(rec["socket_errors"].values()) + rec["non_2xx_3xx"]
        rec["errors"] = errs
        if "rps" not in rec:
            rec["error"] = (rec.get("error", "") + f" wrk output not parsed (exit {p.returncode})").strip()
        return rec

    runs: list[dict] = []
    live = [objs[n] for n in targets]
    log(f"warm-up: {args.warmup:g} s per target")
    for i, t in enumerate(live):
        r = one_run(t, args.warmup, 0, i, True)
        runs.append(r)
        time.sleep(args.pause)
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(live)
        order = live[k:] + live[:k]
        for pos, t in enumerate(order):
            r = one_run(t, args.duration, rnd, pos, False)
            runs.append(r)
            if "rps" in r:
                log(f"round {rnd}/{args.rounds} {t.name:13s} {r['rps']:9.0f} req/s  p99 {r.get('p99_ms', 0):7.2f} ms  "
                    f"proxy {r.get('proxy_cpu_us_per_req') or 0:6.1f} us/req  steal {r['steal_pct']:4.1f}%  "
                    f"other {r['other_load_cores']:.2f} cores  errors {r['errors']}")
            else:
                log(f"round {rnd}/{args.rounds} {t.name}: {r.get('skipped') or r.get('error')}")
            time.sleep(args.pause)

    finished = _dt.datetime.now(_dt.timezone.utc)
    extras: dict = {}
    if "sekisho-full" in objs and objs["sekisho-full"].proc:
        # did the access log really get written, and did the gateway drop lines?
        alog = tmp / "sekisho-full-access.log"
        time.sleep(1.0)  # the writer thread batches
        try:
            with open(alog, "rb") as fh:
                n_lines = sum(1 for _ in fh)
            extras["sekisho_full_access_log"] = {"lines": n_lines, "bytes": alog.stat().st_size,
                                                 "requests_sent": sum(r.get("requests", 0) for r in runs if r["target"] == "sekisho-full") + 2}
            with open(alog, errors="replace") as fh:
                extras["sekisho_full_access_log"]["first_line"] = fh.readline().strip()[:600]
        except OSError as e:
            extras["sekisho_full_access_log"] = {"error": str(e)}
        m = re.search(r'admin: \{ listen: "127\.0\.0\.1:(\d+)"', objs["sekisho-full"].config or "")
        if m:
            try:
                c = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=5)
                c.request("GET", "/metrics")
                body = c.getresponse().read().decode(errors="replace")
                c.close()
                extras["sekisho_full_metrics_drop_lines"] = [l for l in body.splitlines()
                                                             if "drop" in l.lower() and not l.startswith("#")][:20]
            except (OSError, http.client.HTTPException) as e:
                extras["sekisho_full_metrics_drop_lines"] = [f"<{e}>"]
    for t in objs.values():
        if t.proc and t.proc.poll() is not None and not t.dead:
            t.dead = f"process exited with {t.proc.returncode}"
    result = {
        "started": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds"),
        "git": git, "machine": machine, "installed_packages": installed, "build": build, "sekisho": sekisho_info,
        "params": {"duration_s": args.duration, "rounds": args.rounds, "connections": args.connections,
                   "warmup_s": args.warmup, "pause_s": args.pause, "targets": targets, "host": args.host,
                   "path": args.path, "load_cpu": args.load_cpu, "server_cpu": args.server_cpu, "quick": args.quick},
        "notes": args.note,
        "origin": {"config": ocfg, "command": origin_start, "thread_cpus": origin_affinity},
        "targets": {n: {"port_note": "ports are picked free per invocation", "command": t.start_cmd, "config": t.config,
                        "thread_cpus": t.affinity, "sanity": t.sanity, "failure": t.dead,
                        "log_tail": tail(t.log_path, 30) if t.log_path else ""} for n, t in objs.items()},
        "commands": COMMANDS,
        "runs": runs,
        "extras": extras,
    }
    result["summary"] = summarize(result, targets)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(render_md(result))
    log(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    print(summary_table(result))
    return 0


# ---------------------------------------------------------------------------
# summary

def med_range(xs: list[float]) -> dict | None:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def summarize(res: dict, targets: list[str]) -> dict:
    measured = [r for r in res["runs"] if not r["warmup"] and "rps" in r]
    s: dict = {"per_target": {}, "vs_nginx": {}}
    for t in targets:
        rs = [r for r in measured if r["target"] == t]
        allr = [r for r in res["runs"] if not r["warmup"] and r["target"] == t]
        s["per_target"][t] = {
            "runs": len(rs), "runs_planned": len(allr),
            "rps": med_range([r["rps"] for r in rs]),
            "p50_ms": med_range([r.get("p50_ms") for r in rs]),
            "p99_ms": med_range([r.get("p99_ms") for r in rs]),
            "proxy_cpu_us_per_req": med_range([r.get("proxy_cpu_us_per_req") for r in rs]),
            "proxy_user_us_per_req": med_range([r.get("proxy_user_us_per_req") for r in rs]),
            "proxy_sys_us_per_req": med_range([r.get("proxy_sys_us_per_req") for r in rs]),
            "origin_cpu_us_per_req": med_range([r.get("origin_cpu_us_per_req") for r in rs]),
            "server_core_cpu_us_per_req": med_range([r.get("server_core_cpu_us_per_req") for r in rs]),
            "peak_rss_kib": max([r["proxy_VmHWM"] for r in rs if "proxy_VmHWM" in r], default=None),
            "steal_pct": med_range([r["steal_pct"] for r in rs]),
            "other_load_cores": med_range([r["other_load_cores"] for r in rs]),
            "wrk_cpu_pct": med_range([r["wrk_cpu_pct"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "requests": sum(r.get("requests", 0) for r in rs),
            "origin_requests": sum(r.get("origin_requests", 0) for r in rs),
            "origin_new_conns": med_range([r.get("origin_new_conns") for r in rs]),
        }
    if "nginx" in targets:
        by_round = {}
        for r in measured:
            by_round.setdefault(r["round"], {})[r["target"]] = r
        base_rss = s["per_target"]["nginx"]["peak_rss_kib"]
        for t in targets:
            if t == "nginx":
                continue
            pairs = [(rr[t], rr["nginx"]) for rr in by_round.values() if t in rr and "nginx" in rr]

            def ratio(key):
                return med_range([a[key] / b[key] for a, b in pairs if a.get(key) and b.get(key)])
            tr = s["per_target"][t]

            def med_ratio(key):
                a, b = tr.get(key), s["per_target"]["nginx"].get(key)
                return a["median"] / b["median"] if a and b and b["median"] else None
            s["vs_nginx"][t] = {
                "paired_rounds": len(pairs),
                "rps": ratio("rps"), "p50_ms": ratio("p50_ms"), "p99_ms": ratio("p99_ms"),
                "proxy_cpu_us_per_req": ratio("proxy_cpu_us_per_req") if t != "direct" else None,
                "rps_of_medians": med_ratio("rps"),
                "proxy_cpu_of_medians": med_ratio("proxy_cpu_us_per_req") if t != "direct" else None,
                "peak_rss": (tr["peak_rss_kib"] / base_rss) if tr["peak_rss_kib"] and base_rss and t != "direct" else None,
            }
    return s


def f(x, nd=1, unit=""):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}{unit}"


def mr(d, nd=1):
    if not d:
        return "–"
    return f"{f(d['median'], nd)} ({f(d['min'], nd)}–{f(d['max'], nd)})"


def summary_table(res: dict) -> str:
    s = res["summary"]
    hdr = ("| target | req/s median (min–max) | p50 ms | p99 ms median (min–max) | proxy CPU µs/req median (min–max) "
           "| of which user / kernel | origin CPU µs/req | peak RSS MiB | steal % (median) | other load, cores | wrk CPU % | errors | runs |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for t, d in s["per_target"].items():
        rss = d["peak_rss_kib"] / 1024 if d["peak_rss_kib"] and t != "direct" else None
        cpu = mr(d["proxy_cpu_us_per_req"]) if t != "direct" else f"(origin only) {mr(d['server_core_cpu_us_per_req'])}"
        us, ks = d.get("proxy_user_us_per_req"), d.get("proxy_sys_us_per_req")
        split = f"{f(us['median'])} / {f(ks['median'])}" if us and ks else "–"
        rows.append(f"| {t} | {mr(d['rps'], 0)} | {f(d['p50_ms']['median'] if d['p50_ms'] else None, 2)} | {mr(d['p99_ms'], 2)} "
                    f"| {cpu} | {split} | {f(d['origin_cpu_us_per_req']['median'] if d['origin_cpu_us_per_req'] else None)} "
                    f"| {f(rss)} | {f(d['steal_pct']['median'] if d['steal_pct'] else None)} "
                    f"| {f(d['other_load_cores']['median'] if d['other_load_cores'] else None, 2)} "
                    f"| {f(d['wrk_cpu_pct']['median'] if d['wrk_cpu_pct'] else None, 0)} | {d['errors']} | {d['runs']}/{d['runs_planned']} |")
    out = hdr + "\n".join(rows) + "\n"
    if s["vs_nginx"]:
        out += ("\n| vs nginx | req/s ratio | proxy CPU µs/req ratio | p50 ratio | p99 ratio | peak RSS ratio | paired rounds |\n"
                "|---|---|---|---|---|---|---|\n")
        for t, d in s["vs_nginx"].items():
            out += (f"| {t} | {mr(d['rps'], 2)} | {mr(d['proxy_cpu_us_per_req'], 2)} | {mr(d['p50_ms'], 2)} | {mr(d['p99_ms'], 2)} "
                    f"| {f(d['peak_rss'], 2)} | {d['paired_rounds']} |\n")
    return out


def render_md(res: dict) -> str:
    p, g, m = res["params"], res["git"], res["machine"]
    L = []
    L.append("# Gateway benchmark: sekisho vs nginx vs HAProxy (reverse proxy, one origin)\n")
    L.append("Generated by `bench/gateway.sh` (`bench/gateway.py`); overwritten on every run, git history keeps "
             "the older ones. How to read it: `bench/README.md`.\n")
    dirty = "**dirty**" if g["dirty"] else "clean"
    L.append(f"- date: {res['started']} → {res['finished']} (UTC)")
    L.append(f"- commit: `{g['commit']}` ({g['subject']}); tree outside `bench/`: {dirty}"
             + (f" ({g['dirty_count']} paths, diff fingerprint `{g['diff_sha256']}`)" if g["dirty"] else ""))
    if res["sekisho"]:
        sk = res["sekisho"]
        L.append(f"- sekisho binary: `{sk['version']}`, sha256 `{sk['sha256'][:16]}…`, built {sk['mtime']}"
                 + (f" (build took {res['build']['build_seconds']} s)" if res["build"] else " (not rebuilt by this run)"))
    else:
        L.append("- sekisho: **not measured in this run** (not among the targets)")
    L.append(f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), kernel {m['kernel']}, {m['os']}, RAM {m['mem_total']}; "
             f"load average at start {m['loadavg_at_start'].split()[0:3]}")
    L.append(f"- tools: {m['nginx']}; {m['haproxy']}; {m['wrk']}; Python {m['python']}; {m['rustc']}")
    L.append(f"- parameters: {p['rounds']} rounds × {p['duration_s']:g} s, {p['connections']} connections, wrk 1 thread on "
             f"core {p['load_cpu']}, proxy + origin on core {p['server_cpu']}, warm-up {p['warmup_s']:g} s per target, "
             f"{p['pause_s']:g} s pause between runs; request `GET {p['path']}` with `Host: {p['host']}`"
             + ("; **--quick smoke run**" if p["quick"] else ""))
    if res["installed_packages"]:
        L.append(f"- installed by this run: {', '.join(res['installed_packages'])}")
    for n in res["notes"]:
        L.append(f"- note: {n}")
    fails = {t: d["failure"] for t, d in res["targets"].items() if d["failure"]}
    for t, why in fails.items():
        L.append(f"- **{t} failed**: {why.splitlines()[0]}")
    for t, d in res["targets"].items():
        if d["sanity"] and not d["sanity"].get("ok") and not d["failure"]:
            L.append(f"- **{t} sanity check failed**: {d['sanity'].get('error')}")
    for t, d in res["summary"]["per_target"].items():
        if d["wrk_cpu_pct"] and d["wrk_cpu_pct"]["max"] > 85:
            L.append(f"- {t}: wrk used up to {d['wrk_cpu_pct']['max']:.0f} % of its core; its req/s may be "
                     "limited by the load generator, not by the server core")
    errs = {t: d["errors"] for t, d in res["summary"]["per_target"].items() if d["errors"]}
    for t, e in errs.items():
        L.append(f"- **{t}: {e} errors** (non-2xx/3xx responses or socket errors) over its measured runs")
    L.append("")
    L.append("## Results (medians over rounds; min–max in parentheses)\n")
    L.append(summary_table(res))
    L.append("""
- **proxy CPU µs/req** is the steadier figure on this VM: user+sys CPU time of the proxy process (all
  threads, `/proc/PID/stat`) over the run divided by the requests wrk completed. req/s and latency move with
  steal and with other tenants; CPU per request moves much less. For `direct` there is no proxy; the figure
  shown is the origin's own CPU per request.
- **origin CPU µs/req**: the origin's CPU per request; it shares the core with the proxy, so a proxy that
  keeps the origin busier (e.g. new connections) pays for it in req/s.
- **ratios vs nginx** are the median of per-round ratios (each round runs every target back to back, so a
  ratio compares runs minutes apart at most); below 1.0 is better for CPU, p50, p99 and RSS, above 1.0 is
  better for req/s.
- **peak RSS** is the largest VmHWM over the measured runs, reset (`clear_refs` 5) before every run.
- **steal %** is the VM's steal time over the run (all CPUs, `/proc/stat`); **other load** is the CPU used
  by processes other than wrk, the proxy and the origin (other builds or tests on the machine), in cores.
- **wrk CPU %** near 100 would mean the load generator, not the proxy, limits req/s.
""")
    # checks
    L.append("## Checks\n")
    L.append("| target | sanity (2 requests on one connection) | threads pinned to CPUs | requests seen by origin / by wrk | new origin connections per run (median) |")
    L.append("|---|---|---|---|---|")
    for t, d in res["targets"].items():
        sm = res["summary"]["per_target"][t]
        san = d["sanity"]
        st = "ok" if san.get("ok") else (san.get("error") or d["failure"] or "–")
        st = st.splitlines()[0] if st else st
        diff = sm["origin_requests"] - sm["requests"]
        verdict = "ok" if 0 <= diff <= res["params"]["connections"] * max(sm["runs"], 1) else "**MISMATCH**"
        ratio = f"{sm['origin_requests']:,} / {sm['requests']:,} ({verdict})"
        L.append(f"| {t} | {st} | {', '.join(d['thread_cpus']) or '–'} | {ratio} | {mr(sm['origin_new_conns'], 0)} |")
    L.append(f"\nOrigin threads pinned to CPUs: {', '.join(res['origin']['thread_cpus'])}. "
             "The origin may see up to one request per connection more than wrk counts (requests in flight "
             "when wrk stops); fewer would mean answers that did not come from the origin. "
             "\"New origin connections\" counts connections the origin accepted during a run: near 0 for a proxy "
             "that pools keep-alive connections (the warm-up opened them), the wrk connection count for `direct`.\n")
    ex = res.get("extras") or {}
    if "sekisho_full_access_log" in ex:
        a = ex["sekisho_full_access_log"]
        if "error" in a:
            L.append(f"sekisho-full access log: **not readable**: {a['error']}\n")
        else:
            L.append(f"sekisho-full access log: {a['lines']:,} lines ({a['bytes']:,} bytes) for about "
                     f"{a['requests_sent']:,} requests sent (wrk counts completed requests only). First line:\n")
            L.append("```json\n" + a.get("first_line", "") + "\n```\n")
    if ex.get("sekisho_full_metrics_drop_lines"):
        L.append("sekisho-full `/metrics`, lines about drops at the end: " +
                 "; ".join(f"`{l}`" for l in ex["sekisho_full_metrics_drop_lines"]) + "\n")
    L.append("Response headers seen through each target (sanity request):\n")
    for t, d in res["targets"].items():
        if d["sanity"].get("headers"):
            L.append(f"- {t}: " + "; ".join(f"`{h}`" for h in d["sanity"]["headers"]))
    L.append("")
    # every run
    L.append("## Every run, in order\n")
    L.append("| round | pos | target | req/s | p50 ms | p99 ms | proxy µs/req | origin µs/req | peak RSS MiB | steal % | steal % server core | other load | wrk CPU % | new origin conns | errors |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["runs"]:
        rd = "warm-up" if r["warmup"] else str(r["round"])
        if "rps" not in r:
            L.append(f"| {rd} | {r['position']} | {r['target']} | {(r.get('skipped') or r.get('error') or '').splitlines()[0]} |||||||||||||")
            continue
        L.append(f"| {rd} | {r['position']} | {r['target']} | {f(r['rps'], 0)} | {f(r.get('p50_ms'), 2)} | {f(r.get('p99_ms'), 2)} "
                 f"| {f(r.get('proxy_cpu_us_per_req'))} | {f(r.get('origin_cpu_us_per_req'))} "
                 f"| {f(r['proxy_VmHWM'] / 1024 if 'proxy_VmHWM' in r and r['target'] != 'direct' else None)} "
                 f"| {f(r['steal_pct'])} | {f(r.get('steal_pct_cpu' + str(p['server_cpu'])))} | {f(r['other_load_cores'], 2)} "
                 f"| {f(r['wrk_cpu_pct'], 0)} | {r.get('origin_new_conns', '–')} | {r['errors']} |")
    L.append("")
    # method
    L.append("## How it was measured\n")
    L.append(f"""1. Origin: one nginx (`master_process off`, one worker, `return 200 "ok\\n"`, `keepalive_requests 1000000`)
   on core {p['server_cpu']}. A second server block in it exposes `stub_status`, read before and after every run.
2. Each proxy is started once, pinned with `taskset -c {p['server_cpu']}` (every thread inherits it; checked
   above), one worker each, keep-alive to the origin. All stay up for the whole benchmark; only the one under
   load does work.
3. Warm-up: every target once for {p['warmup_s']:g} s (discarded; it also fills the connection pools).
4. {p['rounds']} rounds; in round r the target list is rotated by r-1, so every target runs early and late.
   Per run: `taskset -c {p['load_cpu']} wrk -t1 -c{p['connections']} -d{p['duration_s']:g}s --latency`. Before/after:
   `/proc/PID/stat` utime+stime of proxy and origin, `/proc/stat` (steal, busy time), origin counters;
   VmHWM is reset before and read after. wrk's own CPU comes from `wait4` rusage.
5. Medians, min and max across rounds per target; ratios against nginx per round, then their median.
""")
    # commands and configs
    L.append("## Exact commands\n")
    L.append("Ports are picked free (loopback) per invocation; the ones below are this run's.\n")
    L.append("```sh")
    for c in res["commands"]:
        L.append(f"# {c['purpose']}\n{c['command']}")
    L.append("```\n")
    L.append("## Configs\n")
    L.append("### origin (nginx)\n\n```nginx\n" + res["origin"]["config"] + "```\n")
    lang = {"nginx": "nginx", "haproxy": "haproxy", "sekisho": "yaml", "sekisho-full": "yaml"}
    for t, d in res["targets"].items():
        if d["config"]:
            L.append(f"### {t}\n\n```{lang.get(t, '')}\n" + d["config"] + "```\n")
    # logs
    L.append("## Process output (tail)\n")
    for t, d in res["targets"].items():
        if d["log_tail"] or d["sanity"].get("validate"):
            txt = (f"validate: {d['sanity']['validate']}\n" if d["sanity"].get("validate") else "") + d["log_tail"]
            L.append(f"<details><summary>{t}</summary>\n\n```text\n{txt}\n```\n</details>\n")
    # raw
    L.append("## Raw wrk output of every run\n")
    L.append("<details><summary>all runs</summary>\n")
    for r in res["runs"]:
        rd = "warm-up" if r["warmup"] else f"round {r['round']}"
        L.append(f"### {rd}, {r['target']}\n")
        if "command" in r:
            L.append(f"`{r['command']}`\n")
        L.append("```text\n" + (r.get("raw") or r.get("skipped") or r.get("error") or "").rstrip() + "\n```\n")
    L.append("</details>\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
