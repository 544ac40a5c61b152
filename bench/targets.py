#!/usr/bin/env python3
"""Issue 3, targets 2, 3, 5 (idle connections) and 6: the measurements bench/gateway.py
(target 1) does not make. Same origin and pinning as gateway.py: the load generator on core
0, the proxy and the origin on core 1, every proxy with one worker unless said otherwise.

  h2      target 2: HTTP/2 downstream with h2load (-c 10 -m 50: 500 streams in flight),
          sekisho's upstream pool capped at 64 connections per address; req/s, CPU µs/req,
          new origin connections and TIME_WAIT sockets left.
  bodies  target 3: 16 KiB and 1 MiB response bodies through wrk (-c 20): MB/s, CPU µs/req,
          peak RSS per body size (memory must stay flat: bodies are streamed).
  idle    target 5: RSS added by 10,000 idle keep-alive client connections (each served one
          request first), per connection.
  scale   target 6: req/s with the proxy on 1 core (--workers 1, pinned) and on both cores
          (--workers 2); on this 2-core VM the load generator and the origin then share the
          proxy's cores, so the ratio understates what 2 dedicated cores would give.
  scale_fixed  target 6 with a throttled load generator (the issue's alternative): h2load
          --h1 at a fixed request rate well below one core's capacity, the proxy with 1
          worker on core 1 and with 2 workers on both; the proxy's CPU per request in each.
          Equal CPU per request means the work spreads over two cores at no extra cost, so
          two dedicated cores serve 2 × (1-core CPU/req) / (2-core CPU/req) times as much.

Rounds alternate nginx and sekisho (A/B) to spread the VM's drift over both. Results go to
--out (.md and .json); --append-to adds the markdown to another file (the gateway results).

    bench/targets.py --sekisho-bin $CARGO_TARGET_DIR/release/sekisho [--only h2,bodies] [--rounds 3]
"""

import argparse
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as g  # noqa: E402  (process helpers, /proc readers, the origin's config)

PATH = "/v1/items/12345"
HOST = "api.example.com"


def origin_conf(d: Path, port: int, status_port: int) -> str:
    """gateway.py's origin, plus static files for the body sizes."""
    base = g.origin_conf(d, port, status_port)
    files = f"""
        location = /body/16k {{ alias {d}/www/16k.bin; default_type application/octet-stream; }}
        location = /body/1m {{ alias {d}/www/1m.bin; default_type application/octet-stream; }}
"""
    # insert the file locations before the catch-all location of the main server
    return base.replace("        location / {", files + "        location / {", 1)


def nginx_conf(d: Path, port: int, origin_port: int, workers: int = 1, h2: bool = False) -> str:
    c = g.nginx_conf(d, port, origin_port)
    c = c.replace("worker_processes 1;", f"worker_processes {workers};")
    if workers > 1:
        c = c.replace("master_process off;", "master_process on;")
    if h2:
        c = c.replace(f"listen 127.0.0.1:{port} backlog=4096;", f"listen 127.0.0.1:{port} backlog=4096 http2;")
    return c.replace("events { worker_connections 4096; }", "events { worker_connections 15000; }")


def sekisho_conf(port: int, origin_port: int) -> str:
    return f"""# sekisho, minimal, upstream pool capped at 64 connections per address
listeners: [{{ name: public, listen: "127.0.0.1:{port}", limits: {{ max_connections: 20000 }} }}]
access_log: {{ path: "off" }}
routes: [{{ name: origin, match: {{ path_prefix: / }}, cluster: origin }}]
clusters: [{{ name: origin, endpoints: ["127.0.0.1:{origin_port}"],
             pool: {{ idle_timeout: 300s, max_connections: 64, max_idle: 64 }} }}]
"""


def raise_nofile():
    """The soft fd limit up to the hard one (10,000 idle connections need 10,000+ fds on each side)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(name, argv, tmp, port):
    log = tmp / f"{name}.out"
    fh = open(log, "wb")
    p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=raise_nofile)
    fh.close()
    with g.PROCS.lock:
        g.PROCS.items.append((name, p))
    g.wait_listening(port, p)
    return p


def children(pid: int) -> list[int]:
    """pid and its children (nginx with a master process)."""
    out = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            kids = open(f"/proc/{pid}/task/{t}/children").read().split()
            out += [int(k) for k in kids]
    except OSError:
        pass
    return out


def cpu_ticks(pid: int) -> int:
    return sum(g.proc_cpu_ticks(p) for p in children(pid))


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    total = 0
    for p in children(pid):
        total += g.proc_status(p).get(key, 0) or 0
    return total


def time_wait() -> int:
    out = subprocess.run(["ss", "-tanH", "state", "time-wait"], stdout=subprocess.PIPE, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def measure(pid, origin_pid, status_port, argv, parse):
    for p in children(pid):
        g.reset_peak_rss(p)
    s0, o0, st0, tw0 = cpu_ticks(pid), g.proc_cpu_ticks(origin_pid), g.stub_status(status_port), time_wait()
    ps0 = g.proc_stat()
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    ps1 = g.proc_stat()
    s1, o1, st1, tw1 = cpu_ticks(pid), g.proc_cpu_ticks(origin_pid), g.stub_status(status_port), time_wait()
    rec = parse(out)
    n = rec.get("requests") or 0
    rec["cpu_us_per_req"] = 1e6 * (s1 - s0) / g.CLK_TCK / n if n else None
    rec["origin_cpu_us_per_req"] = 1e6 * (o1 - o0) / g.CLK_TCK / n if n else None
    rec["peak_rss_mib"] = rss_kb(pid, "VmHWM") / 1024
    rec["origin_new_conns"] = (st1["accepts"] - st0["accepts"] - 1) if st0 and st1 else None
    rec["time_wait_delta"] = tw1 - tw0
    rec["steal_pct"] = g.stat_delta(ps0, ps1, "cpu")["steal_pct"]
    rec["raw"] = out[-1500:]
    return rec


def parse_h2load(out: str) -> dict:
    rec: dict = {}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s, ([\d.]+)([KMG]?B)/s", out)
    if m:
        rec["rps"] = float(m[3])
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    if m:
        rec["requests"], rec["failed"] = int(m[4]), int(m[5]) + int(m[6])
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        rec["non_2xx"] = int(m[3]) + int(m[4])
    m = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if m:
        rec["mean_latency"] = m[1]
    return rec


def parse_wrk(out: str) -> dict:
    rec = g.parse_wrk(out)
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    if m:
        mult = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}[m[2]]
        rec["mb_per_s"] = float(m[1]) * mult / 1e6
    return rec


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=1):
    return "–" if x is None else f"{x:,.{nd}f}"


def run(args, tmp: Path) -> dict:
    nginx = g.which("nginx")
    www = tmp / "www"
    www.mkdir()
    (www / "16k.bin").write_bytes(os.urandom(16 * 1024))
    (www / "1m.bin").write_bytes(os.urandom(1024 * 1024))
    (tmp / "origin-tmp").mkdir()
    (tmp / "nginx-tmp").mkdir()
    op, sp = g.free_port(), g.free_port()
    (tmp / "origin.conf").write_text(origin_conf(tmp, op, sp))
    origin = start("origin", ["taskset", "-c", "1", nginx, "-p", str(tmp), "-c", str(tmp / "origin.conf"),
                              "-e", str(tmp / "origin.error.log")], tmp, op)
    res: dict = {"rounds": args.rounds, "duration": args.duration}

    def proxies(workers: int = 1, h2: bool = False, cpus: str = "1"):
        """(name, pid, port) for nginx and sekisho, started fresh."""
        out = []
        np_, sp_ = g.free_port(), g.free_port()
        ncfg = tmp / f"nginx-{workers}-{int(h2)}.conf"
        ncfg.write_text(nginx_conf(tmp, np_, op, workers, h2))
        n = start("nginx", ["taskset", "-c", cpus, nginx, "-p", str(tmp), "-c", str(ncfg), "-e", str(tmp / "nginx.error.log")],
                  tmp, np_)
        out.append(("nginx", n, np_))
        scfg = tmp / "sekisho.yaml"
        scfg.write_text(sekisho_conf(sp_, op))
        s = start("sekisho", ["taskset", "-c", cpus, args.sekisho_bin, "serve", "-c", str(scfg), "--workers", str(workers)],
                  tmp, sp_)
        out.append(("sekisho", s, sp_))
        return out

    def stop(ps):
        for _, p, _ in ps:
            g.PROCS.stop(p)
            with g.PROCS.lock:
                g.PROCS.items = [(n, q) for n, q in g.PROCS.items if q is not p]

    def ab(ps, argv_of, parse, label):
        runs = {name: [] for name, _, _ in ps}
        for _, p, port in ps:  # warm-up: fills the pools
            subprocess.run(argv_of(port, 2), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for r in range(args.rounds):
            order = ps if r % 2 == 0 else list(reversed(ps))
            for name, p, port in order:
                rec = measure(p.pid, origin.pid, sp, argv_of(port, args.duration), parse)
                g.log(f"{label} round {r + 1} {name}: {fmt(rec.get('rps'), 0)} req/s "
                      f"{fmt(rec.get('mb_per_s'))} MB/s {fmt(rec.get('cpu_us_per_req'))} us/req "
                      f"rss {fmt(rec.get('peak_rss_mib'))} MiB new-origin-conns {rec.get('origin_new_conns')}")
                runs[name].append(rec)
                time.sleep(1)
        return runs

    def summary(runs):
        s = {}
        for name, rs in runs.items():
            s[name] = {k: med([r.get(k) for r in rs]) for k in
                       ["rps", "mb_per_s", "cpu_us_per_req", "origin_cpu_us_per_req", "peak_rss_mib",
                        "origin_new_conns", "time_wait_delta", "steal_pct"]}
            s[name]["rps_range"] = [min((r.get("rps") or 0) for r in rs), max((r.get("rps") or 0) for r in rs)]
            s[name]["errors"] = sum((r.get("failed") or 0) + (r.get("non_2xx") or 0) + (r.get("non_2xx_3xx") or 0)
                                    + sum((r.get("socket_errors") or {}).values()) for r in rs)
        return s

    only = set(args.only.split(","))
    if "h2" in only:
        ps = proxies(h2=True)
        argv = lambda port, d: ["taskset", "-c", "0", "h2load", "-c", "10", "-m", "50", "-t", "1", "-D", str(int(d)),
                                "-H", f":authority: {HOST}", f"http://127.0.0.1:{port}{PATH}"]
        res["h2"] = summary(ab(ps, argv, parse_h2load, "h2"))
        res["h2"]["command"] = " ".join(argv("PORT", args.duration))
        stop(ps)
    if "bodies" in only:
        ps = proxies()
        res["bodies"] = {}
        for size in ["small", "16k", "1m"]:
            path = PATH if size == "small" else f"/body/{size}"
            conns = 50 if size == "small" else 20
            argv = lambda port, d, path=path, conns=conns: ["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", f"-d{int(d)}s",
                                                            "--latency", "-H", f"Host: {HOST}",
                                                            f"http://127.0.0.1:{port}{path}"]
            res["bodies"][size] = summary(ab(ps, argv, parse_wrk, f"body {size}"))
        stop(ps)
    if "idle" in only:
        res["idle"] = {}
        ps = proxies()
        for name, p, port in ps:
            res["idle"][name] = idle_conns(p.pid, port, args.idle_conns)
            g.log(f"idle {name}: {res['idle'][name]}")
        stop(ps)
    if "scale" in only:
        res["scale"] = {}
        for workers, cpus in [(1, "1"), (2, "0,1")]:
            ps = proxies(workers=workers, cpus=cpus)
            # wrk is not pinned here: with 2 workers there is no core left for it.
            argv = lambda port, d: ["wrk", "-t1", "-c50", f"-d{int(d)}s", "--latency", "-H", f"Host: {HOST}",
                                    f"http://127.0.0.1:{port}{PATH}"]
            res["scale"][f"{workers}"] = summary(ab(ps, argv, parse_wrk, f"scale {workers} core(s)"))
            stop(ps)
    if "scale_fixed" in only:
        res["scale_fixed"] = {"rate": args.fixed_rate}
        per_client = max(1, args.fixed_rate // 50)
        for workers, cpus in [(1, "1"), (2, "0,1")]:
            ps = proxies(workers=workers, cpus=cpus)
            argv = lambda port, d: ["h2load", "--h1", "-c", "50", "-t", "1", "--rps", str(per_client),
                                    "-D", str(int(d)), "-H", f":authority: {HOST}", f"http://127.0.0.1:{port}{PATH}"]
            res["scale_fixed"][f"{workers}"] = summary(ab(ps, argv, parse_h2load, f"fixed-rate {workers} core(s)"))
            res["scale_fixed"]["command"] = " ".join(argv("PORT", args.duration))
            stop(ps)
    return res


def idle_conns(pid: int, port: int, n: int) -> dict:
    """Opens n keep-alive connections, each serving one request, and keeps them idle."""
    raise_nofile()
    req = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    warm = socket.create_connection(("127.0.0.1", port))
    warm.sendall(req)
    warm.recv(4096)
    time.sleep(0.5)
    before = rss_kb(pid)
    socks = []
    failed = 0
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(req)
            if not s.recv(4096).startswith(b"HTTP/1.1 200"):
                failed += 1
            socks.append(s)
        except OSError:
            failed += 1
    time.sleep(1.0)
    after = rss_kb(pid)
    alive = 0
    for s in socks:  # still open (the proxy did not close them)?
        s.setblocking(False)
        try:
            alive += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    warm.close()
    return {"connections": n, "failed": failed, "still_open": alive, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_conn": (after - before) / max(1, n - failed)}


def render(res: dict, commit: str, binary: str) -> str:
    L = ["## Issue 3 targets 2, 3, 5 (idle connections), 6", "",
         f"Measured by `bench/targets.py` on commit `{commit}`, binary sha256 `{g.sha256_file(binary)[:16]}…`, "
         f"{res['rounds']} rounds × {res['duration']:.0f} s, nginx and sekisho alternating; medians. "
         f"Load generator on core 0, proxy and origin on core 1 (except target 6).", ""]
    if "h2" in res:
        h = res["h2"]
        n, s = h["nginx"], h["sekisho"]
        L += ["### Target 2: HTTP/2 downstream (h2load, 10 connections × 50 streams)", "",
              f"`{h['command']}`; nginx `listen ... http2` (h2c), upstream keepalive 64; sekisho pool capped at "
              "64 connections per address.", "",
              "| proxy | req/s (min–max) | CPU µs/req | origin CPU µs/req | new origin conns / run | TIME_WAIT added | errors |",
              "|---|---|---|---|---|---|---|"]
        for name, d in [("nginx", n), ("sekisho", s)]:
            L.append(f"| {name} | {fmt(d['rps'], 0)} ({fmt(d['rps_range'][0], 0)}–{fmt(d['rps_range'][1], 0)}) | "
                     f"{fmt(d['cpu_us_per_req'])} | {fmt(d['origin_cpu_us_per_req'])} | {fmt(d['origin_new_conns'], 0)} | "
                     f"{fmt(d['time_wait_delta'], 0)} | {d['errors']} |")
        if n["rps"] and s["rps"]:
            ratio = s["rps"] / n["rps"]
            L += ["", f"sekisho / nginx req/s: **{ratio:.2f}** (target ≥ 1.0: **{'met' if ratio >= 1 else 'missed'}**)", ""]
    if "bodies" in res:
        L += ["### Target 3: body sizes (wrk, small: 50 connections, 16 KiB and 1 MiB: 20 connections)", "",
              "| body | proxy | req/s | MB/s | CPU µs/req | peak RSS MiB | errors |", "|---|---|---|---|---|---|---|"]
        verdict = []
        for size, d in res["bodies"].items():
            for name in ["nginx", "sekisho"]:
                x = d[name]
                L.append(f"| {size} | {name} | {fmt(x['rps'], 0)} | {fmt(x['mb_per_s'])} | {fmt(x['cpu_us_per_req'])} | "
                         f"{fmt(x['peak_rss_mib'])} | {x['errors']} |")
            if size != "small" and d["nginx"]["mb_per_s"] and d["sekisho"]["mb_per_s"]:
                r = d["sekisho"]["mb_per_s"] / d["nginx"]["mb_per_s"]
                verdict.append(f"{size}: {r:.2f}× nginx MB/s ({'met' if r >= 1 else 'missed'})")
        rss = [res["bodies"][k]["sekisho"]["peak_rss_mib"] for k in res["bodies"]]
        L += ["", "Throughput ratios: " + "; ".join(verdict) + ".",
              f"sekisho peak RSS small / 16 KiB / 1 MiB: {' / '.join(fmt(x) for x in rss)} MiB "
              f"(flat in body size if the 1 MiB figure stays within ~1 MiB of the small one).", ""]
    if "idle" in res:
        L += ["### Target 5b: idle keep-alive client connections", "",
              "| proxy | connections | failed | still open after | RSS before KiB | RSS after KiB | KiB per connection |",
              "|---|---|---|---|---|---|---|"]
        for name, d in res["idle"].items():
            L.append(f"| {name} | {d['connections']:,} | {d['failed']} | {d['still_open']:,} | {d['rss_before_kib']:,} | "
                     f"{d['rss_after_kib']:,} | {d['kib_per_conn']:.2f} |")
        s = res["idle"]["sekisho"]["kib_per_conn"]
        L += ["", f"sekisho: {s:.2f} KiB per idle connection (target ≤ 10 KB = 9.77 KiB: **{'met' if s <= 9.77 else 'missed'}**)", ""]
    if "scale" in res:
        L += ["### Target 6: one core vs two", "",
              "1 core: `--workers 1` (nginx `worker_processes 1`) pinned to core 1; 2 cores: `--workers 2` "
              "(nginx 2 workers) on cores 0-1. wrk (1 thread) and the origin are not pinned: this VM has 2 cores, so "
              "in the 2-core case they run on the proxy's cores.", "",
              "| proxy | req/s 1 core | req/s 2 cores | ratio | CPU µs/req 1 core | CPU µs/req 2 cores |", "|---|---|---|---|---|---|"]
        for name in ["nginx", "sekisho"]:
            a, b = res["scale"]["1"][name], res["scale"]["2"][name]
            ratio = b["rps"] / a["rps"] if a["rps"] and b["rps"] else None
            L.append(f"| {name} | {fmt(a['rps'], 0)} | {fmt(b['rps'], 0)} | {fmt(ratio, 2)} | {fmt(a['cpu_us_per_req'])} | "
                     f"{fmt(b['cpu_us_per_req'])} |")
        L.append("")
    if "scale_fixed" in res:
        f_ = res["scale_fixed"]
        L += ["### Target 6 with a throttled load generator", "",
              f"`{f_['command']}` ({f_['rate']:,} req/s offered): 1 core = `--workers 1` pinned to core 1, 2 cores = "
              "`--workers 2` on cores 0-1 (origin and h2load unpinned in both). At a fixed rate the proxy never "
              "saturates, so req/s is the offered rate; what differs is the CPU each request costs.", "",
              "| proxy | req/s 1 core | req/s 2 cores | CPU µs/req 1 core | CPU µs/req 2 cores | scaling implied (2 × 1-core ÷ 2-core CPU/req) |",
              "|---|---|---|---|---|---|"]
        for name in ["nginx", "sekisho"]:
            a, b = f_["1"][name], f_["2"][name]
            implied = 2 * a["cpu_us_per_req"] / b["cpu_us_per_req"] if a["cpu_us_per_req"] and b["cpu_us_per_req"] else None
            L.append(f"| {name} | {fmt(a['rps'], 0)} | {fmt(b['rps'], 0)} | {fmt(a['cpu_us_per_req'])} | "
                     f"{fmt(b['cpu_us_per_req'])} | {fmt(implied, 2)} |")
        L.append("")
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sekisho-bin", required=True)
    ap.add_argument("--only", default="h2,bodies,idle,scale,scale_fixed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--fixed-rate", type=int, default=10000, help="offered req/s for scale_fixed (default 10000)")
    ap.add_argument("--out", default=str(g.REPO / "bench" / "results" / "targets"))
    ap.add_argument("--append-to", help="also append the markdown to this file")
    args = ap.parse_args()
    for tool in ["nginx", "wrk", "h2load", "ss", "taskset"]:
        if not g.which(tool):
            raise SystemExit(f"{tool} missing: apt-get install nginx-light wrk nghttp2-client iproute2 util-linux")
    raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="sekisho-targets-"))
    commit = subprocess.run(["git", "-C", str(g.REPO), "rev-parse", "HEAD"], stdout=subprocess.PIPE, text=True).stdout.strip()
    try:
        res = run(args, tmp)
    finally:
        g.PROCS.stop_all()
    res["commit"] = commit
    md = render(res, commit, args.sekisho_bin)
    Path(args.out + ".json").write_text(json.dumps(res, indent=1, default=str))
    Path(args.out + ".md").write_text(md)
    if args.append_to:
        with open(args.append_to, "a") as f:
            f.write("\n" + md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
