#!/usr/bin/env python3
"""Profile sekisho under the gateway benchmark's load (target 1 layout).

Starts the same origin and the same `sekisho-full` (or minimal `sekisho`) config as
bench/gateway.py, pinned the same way (wrk on core 0, proxy + origin on core 1), runs wrk
for --duration seconds and samples the proxy with `perf record -e cpu-clock -g` (hardware
counters do not work on this VM). Prints the time split (kernel / sekisho / libc / other)
and the hottest symbols, self time, and writes the full `perf report` text next to --out.

    bench/profile.py --sekisho-bin $CARGO_TARGET_DIR/release/sekisho --duration 10
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as g  # noqa: E402  (the harness's configs and process helpers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sekisho-bin", required=True)
    ap.add_argument("--config", choices=["full", "minimal"], default="full")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--freq", type=int, default=999)
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--out", default="/tmp/sekisho-profile", help="path prefix for perf.data and the report")
    ap.add_argument("--call-graph", default="fp", help="perf's --call-graph: fp (cheap) or dwarf (stacks through "
                    "code without frame pointers, e.g. libc, at a higher sampling cost)")
    ap.add_argument("--syscalls", action="store_true",
                    help="count system calls per request with strace -c instead of sampling (slows the proxy)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sekisho-profile-"))
    nginx = g.which("nginx")
    try:
        op, sp = g.free_port(), g.free_port()
        (tmp / "origin-tmp").mkdir()
        (tmp / "origin.conf").write_text(g.origin_conf(tmp, op, sp))
        origin = g.PROCS.start("origin", ["taskset", "-c", "1", nginx, "-p", str(tmp), "-c", str(tmp / "origin.conf"),
                                          "-e", str(tmp / "origin.error.log")], tmp / "origin.out", "origin")
        g.wait_listening(op, origin)
        port = g.free_port()
        cfg = (g.sekisho_full_conf(tmp, port, g.free_port(), op) if args.config == "full"
               else g.sekisho_conf(port, op))
        (tmp / "sekisho.yaml").write_text(cfg)
        proxy = g.PROCS.start("sekisho", ["taskset", "-c", "1", args.sekisho_bin, "serve", "-c", str(tmp / "sekisho.yaml"),
                                          "--workers", str(args.workers)], tmp / "sekisho.out", "sekisho")
        g.wait_listening(port, proxy)
        url = f"http://127.0.0.1:{port}/v1/items/12345"
        wrk = ["taskset", "-c", "0", "wrk", "-t1", f"-c{args.connections}", "-H", "Host: api.example.com", url]
        subprocess.run(wrk[:4] + ["-d3s"] + wrk[4:], stdout=subprocess.DEVNULL, check=True)  # warm-up, fills the pool
        data = f"{args.out}.data"
        if args.syscalls:
            perf = subprocess.Popen(["strace", *(["-e", "trace=" + os.environ["STRACE_TRACE"], "-o", f"{args.out}.trace"] if os.environ.get("STRACE_TRACE") else ["-c", "-o", f"{args.out}.strace"]), "-f", "-p", str(proxy.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", str(args.freq), "--call-graph", args.call_graph, "-o", data,
                                     "-p", str(proxy.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        t0 = g.proc_cpu_ticks(proxy.pid)
        out = subprocess.run(wrk[:4] + [f"-d{int(args.duration)}s"] + wrk[4:], stdout=subprocess.PIPE, text=True,
                             check=True).stdout
        t1 = g.proc_cpu_ticks(proxy.pid)
        perf.send_signal(2)
        perf.wait()
        w = g.parse_wrk(out)
        n = w.get("requests") or 1
        print(f"req/s {w.get('rps')}, proxy CPU {1e6 * (t1 - t0) / g.CLK_TCK / n:.1f} us/req (while sampled)")
        if args.syscalls:
            time.sleep(0.5)
            print(f"system calls per request ({n} requests):")
            for line in Path(f"{args.out}.strace").read_text().splitlines():
                m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)$", line)
                if m and m[3] != "total":
                    print(f"  {m[3]:20} {int(m[1]) / n:6.2f}" + (f"  ({int(m[2]) / n:.2f} errors)" if m[2] else ""))
            return 0
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio",
                              "-g", "none", "--percent-limit", "0.3"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
        Path(f"{args.out}.txt").write_text(rep)
        by_dso: dict[str, float] = {}
        rows = []
        for line in rep.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[([.kH])\]\s+(.*)", line)
            if not m:
                continue
            pct, dso, kind, sym = float(m[1]), m[2], m[3], m[4].strip()
            key = "kernel" if kind == "k" or dso.startswith("[kernel") else \
                  "sekisho" if dso == "sekisho" else "libc" if dso.startswith("libc") else dso
            by_dso[key] = by_dso.get(key, 0) + pct
            rows.append((pct, key, sym))
        print("time split (symbols >= 0.3%):", ", ".join(f"{k} {v:.1f}%" for k, v in sorted(by_dso.items(), key=lambda kv: -kv[1])))
        for pct, key, sym in rows[: args.top]:
            print(f"{pct:6.2f}%  {key:8} {sym[:150]}")
        print(f"full report: {args.out}.txt")
    finally:
        g.PROCS.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
