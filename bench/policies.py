#!/usr/bin/env python3
"""Edge policy benchmark: what JWT verification, rate limits and locks add per request.

One `sekisho serve --workers 1` holds one route per variant, all to the same origin (the
nginx origin of bench/gateway.py: one worker, `200 ok\\n`). Variants:

  plain              no policy (the baseline)
  jwt                RS256, one token for every request (after the first: a verified-token
                     cache hit, if the binary has that cache)
  jwt_unique         RS256, wrk cycles through N distinct pre-signed tokens (default 12,000,
                     more than the default JWT cache holds): a signature check per request
  jwt_nocache        RS256, one token, `cache_size: 0` (only when the binary knows the key)
  jwt_es256_unique   ES256, N distinct tokens
  ratelimit_local    rate_limit {limit: 100000000, period: 1s}: never limits, the bookkeeping
  ratelimit_redis    the same with backend {redis}: one Redis script per request
  lock_redis         lock {key: "k/{query.id}", backend: {redis}}: take + release per request
  lock_memcached     the same on memcached (meta commands)

Every request carries a distinct `?id=N` (wrk Lua script), so lock keys never collide: the
lock variants measure take + release, not waiting. Every variant runs the same script.

Layout: the gateway alone on one core (--server-cpu, default 1); wrk (one thread), the
origin, Redis and memcached on the other (--load-cpu, default 0). Runs are interleaved: each
round runs every variant once, in an order rotated per round. Per run: req/s and p50/p99 from
`wrk --latency`, gateway CPU µs per request (utime+stime from /proc/PID/stat over the run ÷
requests wrk completed), the same for the origin and the backends, steal and other load
from /proc/stat, and the policy counters from the gateway's /metrics (every request really
went through the policy; no Redis fallback).

Reuses the helpers of bench/gateway.py. See bench/README.md.
Usage: bench/policies.py [--quick] [--rounds N] [--duration S] [--variants a,b] ...
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime as _dt
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as gw  # noqa: E402  (bench/gateway.py: processes, /proc readers, wrk parsing, origin)

BENCH_DIR = gw.BENCH_DIR
REPO = gw.REPO
CLK_TCK = gw.CLK_TCK
log, record, capture, PROCS = gw.log, gw.record, gw.capture, gw.PROCS

# name -> what it measures, which token file wrk sends (None: no token), which backend it needs
VARIANTS: dict[str, dict] = {
    "plain": {"what": "no policy (general pipeline, like every policy variant)", "tokens": None},
    "plain_fast": {"what": "no policy, on the HTTP/1.1 fast path (its own listener)", "tokens": None, "fast": True},
    "jwt": {"what": "JWT RS256, one token (cache hits after the first, if cached)", "tokens": "rs256_one"},
    "jwt_unique": {"what": "JWT RS256, N distinct tokens cycled (signature check per request)", "tokens": "rs256_many"},
    "jwt_nocache": {"what": "JWT RS256, one token, `cache_size: 0`", "tokens": "rs256_one", "needs": "cache_size"},
    "jwt_es256_unique": {"what": "JWT ES256, N distinct tokens cycled", "tokens": "es256_many"},
    "ratelimit_local": {"what": "local GCRA, limit never reached", "tokens": None},
    "ratelimit_redis": {"what": "Redis GCRA script, limit never reached", "tokens": None, "backend": "redis"},
    "lock_redis": {"what": "lock take + release on Redis, no contention", "tokens": None, "backend": "redis"},
    "lock_memcached": {"what": "lock take + release on memcached, no contention", "tokens": None, "backend": "memcached"},
}
DEFAULT_VARIANTS = list(VARIANTS)
# Bound on one backend call in the bench config. The defaults (20 ms rate limit, 50 ms lock)
# are meant for production; on this shared 2-core VM a stall of a few hundred ms happens (a
# 250 ms bound was tripped once), and the fallback or the open breaker then skips the backend:
# the run would no longer measure the backend path. A run in which the policy did not run
# normally (errors, fallbacks, lock failures) is reported and left out of the medians.
BACKEND_TIMEOUT = "1s"
PACKAGES = {"nginx": "nginx-light", "wrk": "wrk", "taskset": "util-linux", "redis-server": "redis-server",
            "memcached": "memcached", "openssl": "openssl"}


# ---------------------------------------------------------------------------
# keys and tokens

def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _sign_batch(args: tuple) -> list[str]:
    """Signs tokens [start, end) with the PEM private key (runs in a worker process)."""
    alg, pem, start, end, exp = args
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    key = serialization.load_pem_private_key(pem, password=None)
    header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": "k1"}, separators=(",", ":")).encode())
    out = []
    now = int(time.time())
    for i in range(start, end):
        claims = {"sub": f"user-{i}", "iat": now, "exp": exp, "jti": f"bench-{i}"}
        signing_input = f"{header}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}"
        if alg == "RS256":
            sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:  # ES256: JWS wants r || s, 32 bytes each, not DER
            r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        out.append(f"{signing_input}.{b64url(sig)}")
    return out


def ensure_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "cryptography"]
        log("running " + record(argv, "install the Python package that signs the tokens"))
        subprocess.run(argv, check=True)


def make_keys_and_tokens(tmp: Path, n_unique: int, want: set[str], exp: int) -> dict:
    """RSA-2048 and P-256 key pairs (openssl), token files: one line per token."""
    ensure_cryptography()
    run = lambda argv, why: (record(argv, why), subprocess.run(argv, check=True, capture_output=True))
    out: dict = {"files": {}, "counts": {}}
    pems = {}
    if want & {"rs256_one", "rs256_many"}:
        run(["openssl", "genrsa", "-out", str(tmp / "rsa.pem"), "2048"], "RS256 signing key")
        run(["openssl", "rsa", "-in", str(tmp / "rsa.pem"), "-pubout", "-out", str(tmp / "rsa.pub.pem")],
            "RS256 public key for the gateway")
        pems["RS256"] = (tmp / "rsa.pem").read_bytes()
    if want & {"es256_many"}:
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp / "ec.sec1.pem")],
            "ES256 signing key")
        run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", str(tmp / "ec.sec1.pem"), "-out", str(tmp / "ec.pem")],
            "ES256 signing key as PKCS#8")
        run(["openssl", "ec", "-in", str(tmp / "ec.pem"), "-pubout", "-out", str(tmp / "ec.pub.pem")],
            "ES256 public key for the gateway")
        pems["ES256"] = (tmp / "ec.pem").read_bytes()
    jobs = {"rs256_one": ("RS256", 1), "rs256_many": ("RS256", n_unique), "es256_many": ("ES256", n_unique)}
    workers = max(1, min(2, os.cpu_count() or 1))
    with concurrent.futures.ProcessPoolExecutor(workers) as ex:
        for name, (alg, n) in jobs.items():
            if name not in want:
                continue
            t0 = time.monotonic()
            step = max(1, -(-n // (workers * 4)))
            # distinct jti ranges: the single token is not one of the many
            base = 0 if name.endswith("_one") else 1_000_000
            batches = [(alg, pems[alg], base + s, base + min(n, s + step), exp) for s in range(0, n, step)]
            toks = [t for b in ex.map(_sign_batch, batches) for t in b]
            assert len(set(toks)) == n
            p = tmp / f"tokens-{name}.txt"
            p.write_text("\n".join(toks) + "\n")
            out["files"][name], out["counts"][name] = str(p), n
            log(f"signed {n} {alg} tokens for {name} in {time.monotonic() - t0:.1f} s")
    out["sample_token_bytes"] = {k: len(Path(v).read_text().split("\n", 1)[0]) for k, v in out["files"].items()}
    return out


# ---------------------------------------------------------------------------
# configs

def route_yaml(name: str, tmp: Path, backends: dict) -> str:
    lines = [f"  - name: {name}",
             f"    match: {{ path_prefix: /{name}/ }}",
             "    cluster: origin"]
    rsa = f'{{ files: [{{ path: "{tmp / "rsa.pub.pem"}", kid: k1 }}] }}'
    ec = f'{{ files: [{{ path: "{tmp / "ec.pub.pem"}", kid: k1 }}] }}'
    if name in ("jwt", "jwt_unique"):
        lines.append(f"    auth: {{ jwt: {{ algorithms: [RS256], keys: {rsa} }} }}")
    elif name == "jwt_nocache":
        lines.append(f"    auth: {{ jwt: {{ algorithms: [RS256], keys: {rsa}, cache_size: 0 }} }}")
    elif name == "jwt_es256_unique":
        lines.append(f"    auth: {{ jwt: {{ algorithms: [ES256], keys: {ec} }} }}")
    elif name == "ratelimit_local":
        lines.append("    rate_limit: { limit: 100000000, period: 1s }")
    elif name == "ratelimit_redis":
        lines.append(f'    rate_limit: {{ limit: 100000000, period: 1s, backend: {{ redis: "{backends["redis"]}" }}, '
                     f"timeout: {BACKEND_TIMEOUT} }}")
    elif name == "lock_redis":
        lines.append(f'    lock: {{ key: "k/{{query.id}}", backend: {{ redis: "{backends["redis"]}" }}, '
                     f"timeout: {BACKEND_TIMEOUT} }}")
    elif name == "lock_memcached":
        lines.append(f'    lock: {{ key: "k/{{query.id}}", backend: {{ memcached: "{backends["memcached"]}" }}, '
                     f"timeout: {BACKEND_TIMEOUT} }}")
    return "\n".join(lines)


def sekisho_conf(variants: list[str], tmp: Path, port: int, admin_port: int, origin_port: int, backends: dict,
                 fast_port: int) -> str:
    return "\n".join([
        "# sekisho for the policy benchmark: one route per variant, all to the one origin, no access log.",
        "# Routes with a policy take the general pipeline, so `public` sends every request there",
        "# (http1_fast_path: false) and a policy's cost is measured against the same pipeline;",
        "# `fast` serves plain_fast on the HTTP/1.1 fast path.",
        f'admin: {{ listen: "127.0.0.1:{admin_port}" }}',
        'access_log: { path: "off" }',
        "listeners:",
        f'  - {{ name: public, listen: "127.0.0.1:{port}", http1_fast_path: false }}',
        f'  - {{ name: fast, listen: "127.0.0.1:{fast_port}" }}',
        "routes:",
        *[route_yaml(v, tmp, backends) for v in variants],
        "# idle upstream connections kept 300 s (as in bench/gateway.py)",
        f'clusters: [{{ name: origin, endpoints: ["127.0.0.1:{origin_port}"], pool: {{ idle_timeout: 300s }} }}]',
    ]) + "\n"


def lua_script(variant: str, host: str, token_file: str | None) -> str:
    """wrk script: `GET /<variant>/items/<n>?id=<n>` with n counting up from the run's offset
    (passed after `--`), and for JWT variants `Authorization: Bearer` cycling through the file."""
    load = (f'for line in io.lines("{token_file}") do ntok = ntok + 1; tokens[ntok] = "Bearer " .. line end'
            if token_file else "-- no token")
    return f"""-- generated by bench/policies.py for variant {variant}
local prefix = "/{variant}/items/"
local tokens, ntok = {{}}, 0
{load}
local n = 0
wrk.headers["Host"] = "{host}"
function init(args)
  n = tonumber(args[1] or "0")
end
function request()
  n = n + 1
  if ntok > 0 then wrk.headers["Authorization"] = tokens[n % ntok + 1] end
  return wrk.format(nil, prefix .. n .. "?id=" .. n)
end
"""


# ---------------------------------------------------------------------------
# checks and counters

def http_get(port: int, path: str, headers: dict) -> tuple[int, bytes, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def sanity(variant: str, port: int, host: str, token: str | None) -> dict:
    """The variant answers with the origin's body, and its policy is really in the way."""
    res: dict = {"ok": False}
    path = f"/{variant}/items/0?id=sanity-{variant}"
    hdrs = {"Host": host}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    try:
        for i in range(2):
            st, body, h = http_get(port, path, hdrs)
            res.update(status=st, headers=[f"{k}: {v}" for k, v in h.items()])
            if st != 200 or body != b"ok\n" or h.get("x-origin") != "bench":
                res["error"] = f"request {i + 1}: status {st}, body {body[:120]!r}"
                return res
        if variant.startswith("jwt"):
            st, body, _ = http_get(port, path, {"Host": host})
            res["without_token"] = st
            if st != 401:
                res["error"] = f"without a token: status {st} (want 401): the policy is not in the way"
                return res
        if variant.startswith("ratelimit") and not any(h.lower().startswith("ratelimit-limit:") for h in res["headers"]):
            res["error"] = "no RateLimit-Limit header: the rate limit is not in the way"
            return res
        res["ok"] = True
    except (OSError, http.client.HTTPException) as e:
        res["error"] = f"{type(e).__name__}: {e}"
    return res


METRIC = re.compile(r'^([a-z_:]+)\{([^}]*)\}\s+([0-9.eE+-]+)$')


def route_metrics(admin_port: int) -> dict[str, dict[str, float]]:
    """Policy counters by route: {route: {"name{other labels}": value}} from /metrics."""
    out: dict[str, dict[str, float]] = {}
    try:
        c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode(errors="replace")
        c.close()
    except (OSError, http.client.HTTPException):
        return out
    for line in body.splitlines():
        m = METRIC.match(line)
        if not m or not re.match(r"sekisho_(auth|ratelimit|lock|jwt)", m.group(1)):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        route = labels.pop("route", None)
        if route is None:
            continue
        key = m.group(1) + ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else "")
        out.setdefault(route, {})[key] = float(m.group(3))
    return out


def metric_delta(a: dict, b: dict) -> dict[str, float]:
    return {k: v - a.get(k, 0.0) for k, v in b.items()}


def exclusion(rec: dict) -> str:
    """Why a run does not describe its policy (errors, fallbacks, lock failures), or ""."""
    abnormal = {k: x for k, x in rec.get("policy_counters", {}).items()
                if x > 0 and re.search(r"failures|fallbacks|backend_errors|limited|busy|bad_request|failed_|lost|breaker_open", k)}
    errs = rec.get("errors", 0)
    return "; ".join([f"{errs} errors"] * bool(errs) + [f"{k} {x:,.0f}" for k, x in abnormal.items()])


# ---------------------------------------------------------------------------

def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", 8)), help="seconds per measured run (default 8)")
    ap.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", 3)), help="rounds; every variant runs once per round (default 3)")
    ap.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", 50)), help="wrk connections (default 50)")
    ap.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", 3)), help="seconds of discarded warm-up per variant (default 3)")
    ap.add_argument("--pause", type=float, default=float(env("BENCH_PAUSE", 1)), help="idle seconds between runs (default 1)")
    ap.add_argument("--variants", default=env("BENCH_VARIANTS", ",".join(DEFAULT_VARIANTS)),
                    help=f"comma list from {','.join(VARIANTS)} (default all; `plain` is always added; "
                         "jwt_nocache is dropped if the binary has no `cache_size`)")
    ap.add_argument("--unique-tokens", type=int, default=int(env("BENCH_UNIQUE_TOKENS", 12000)),
                    help="distinct tokens cycled by the *_unique variants (default 12000: more than the JWT "
                         "cache's default 10000 entries, so a token is never still cached when it comes back)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round x 2 s, 1 s warm-up, 600 tokens")
    ap.add_argument("--host", default="api.example.com", help="Host header sent by wrk")
    ap.add_argument("--load-cpu", type=int, default=0, help="core for wrk, the origin, Redis and memcached (default 0)")
    ap.add_argument("--server-cpu", type=int, default=1, help="core for the gateway alone (default 1)")
    ap.add_argument("--sekisho-bin", default=env("SEKISHO_BIN"), help="use this binary, do not build")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build (uses $CARGO_TARGET_DIR/release/sekisho)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    ap.add_argument("--out", default=str(BENCH_DIR / "results" / "policies"), help="results path without extension (default bench/results/policies)")
    ap.add_argument("--note", action="append", default=[], help="free text added to the results (repeatable)")
    ap.add_argument("--reading", default=None, help="a paragraph reading the numbers, written under the tables")
    ap.add_argument("--render", metavar="JSON", help="only re-render the .md from this results .json (with --note/--reading)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, keys, tokens, logs)")
    args = ap.parse_args()
    if args.render:
        res = json.loads(Path(args.render).read_text())
        res["notes"] = res.get("notes", []) + args.note
        if args.reading is not None:
            res["reading"] = args.reading
        for r in res["runs"]:
            if "rps" in r and exclusion(r):
                r["excluded"] = exclusion(r)
        res["summary"] = summarize(res)
        out = Path(args.out)
        out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        out.with_suffix(".md").write_text(render_md(res))
        print(summary_table(res))
        return 0
    if args.quick:
        args.duration, args.rounds, args.warmup = 2.0, 1, 1.0
        args.unique_tokens = min(args.unique_tokens, 600)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; choose from {list(VARIANTS)}")
    if "plain" not in variants:
        variants.insert(0, "plain")
    if args.duration < 1 or args.rounds < 1 or args.connections < 1 or args.unique_tokens < 1:
        ap.error("duration >= 1, rounds >= 1, connections >= 1, unique tokens >= 1")
    ncpu = os.cpu_count() or 1
    if max(args.load_cpu, args.server_cpu) >= ncpu or args.load_cpu == args.server_cpu:
        ap.error(f"--load-cpu and --server-cpu must be different cores below {ncpu}")
    signal.signal(signal.SIGTERM, gw.on_signal)
    signal.signal(signal.SIGHUP, gw.on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="sekisho-policybench-"))
    try:
        return run(args, variants, tmp)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping")
        return 130
    finally:
        PROCS.stop_all()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_packages(allow: bool) -> list[str]:
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if not gw.which(cmd)})
    if not missing:
        return []
    if not allow:
        raise SystemExit(f"missing packages {missing} and --no-install given")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    e = {"DEBIAN_FRONTEND": "noninteractive"}
    for argv in (sudo + ["apt-get", "update"], sudo + ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
        log("running " + record(argv, "install missing packages", env=e))
        subprocess.run(argv, check=True, env={**os.environ, **e})
    return missing


def openssl_reference(cpu: str) -> dict:
    """OpenSSL's own RSA-2048 and P-256 verify time on the gateway's core: what one signature
    check costs with an optimized implementation on this machine, to set the JWT rows against."""
    argv = ["taskset", "-c", cpu, "openssl", "speed", "-seconds", "2", "rsa2048", "ecdsap256"]
    record(argv, "reference: OpenSSL verify speed on the gateway core (before the load)")
    out = capture(argv)
    ref: dict = {"command": " ".join(argv)}
    m = re.search(r"^rsa 2048 bits\s+\S+\s+\S+\s+\S+\s+([\d.]+)\s*$", out, re.M)
    if m:
        ref["rsa2048_verify_us"] = 1e6 / float(m.group(1))
    m = re.search(r"^\s*256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+\S+\s+([\d.]+)\s*$", out, re.M)
    if m:
        ref["p256_verify_us"] = 1e6 / float(m.group(1))
    return ref


def supports_cache_size(bin_: str, tmp: Path) -> bool:
    """Whether this binary's config knows `auth.jwt.cache_size` (the verified-token cache)."""
    p = tmp / "probe.yaml"
    p.write_text(f"""listeners: [{{ name: public, listen: "127.0.0.1:1" }}]
routes: [{{ name: r, match: {{ path_prefix: / }}, cluster: c,
           auth: {{ jwt: {{ algorithms: [RS256], keys: {{ files: [{{ path: "{tmp / 'rsa.pub.pem'}", kid: k1 }}] }}, cache_size: 0 }} }} }}]
clusters: [{{ name: c, endpoints: ["127.0.0.1:1"] }}]
""")
    r = subprocess.run([bin_, "validate", "-c", str(p)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode == 0


def run(args, variants: list[str], tmp: Path) -> int:
    started = _dt.datetime.now(_dt.timezone.utc)
    installed = ensure_packages(not args.no_install)
    git = gw.git_facts()
    build = None
    bin_ = args.sekisho_bin
    if not bin_:
        if args.no_build:
            bin_ = str(Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "sekisho")
        else:
            build = gw.build_sekisho(tmp)
            bin_ = build["bin"]
    if not os.access(bin_, os.X_OK):
        raise SystemExit(f"no sekisho binary at {bin_}")
    st = os.stat(bin_)
    sk_info = {"path": bin_, "sha256": gw.sha256_file(bin_),
               "mtime": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat(timespec="seconds"),
               "version": capture([bin_, "--version"])}
    machine = gw.machine_facts()
    machine["redis"] = capture(["redis-server", "--version"])
    machine["memcached"] = capture(["memcached", "-V"])
    L, S = str(args.load_cpu), str(args.server_cpu)
    crypto_ref = openssl_reference(S) if any(v.startswith("jwt") for v in variants) else {}

    # -- keys, tokens (exp 12 h ahead: far beyond the run)
    # the RSA key and one token always: the cache probe below needs the key
    want_tokens = {VARIANTS[v]["tokens"] for v in variants if VARIANTS[v]["tokens"]} | {"rs256_one"}
    tokens = make_keys_and_tokens(tmp, args.unique_tokens, want_tokens, int(time.time()) + 12 * 3600)
    has_cache_size = supports_cache_size(bin_, tmp)
    skipped = {}
    if "jwt_nocache" in variants and not has_cache_size:
        variants.remove("jwt_nocache")
        skipped["jwt_nocache"] = "this binary has no `auth.jwt.cache_size` (no verified-token cache): jwt is uncached anyway"
        log(f"jwt_nocache: {skipped['jwt_nocache']}")

    # -- origin (the one of bench/gateway.py), backends: all on the load core
    nginx_bin = gw.which("nginx")
    origin_port, status_port = gw.free_port(), gw.free_port()
    ocfg = gw.origin_conf(tmp, origin_port, status_port)
    (tmp / "origin-tmp").mkdir()
    (tmp / "origin.conf").write_text(ocfg)
    oproc = PROCS.start("origin", ["taskset", "-c", L, nginx_bin, "-p", str(tmp), "-c", str(tmp / "origin.conf"),
                                   "-e", str(tmp / "origin.error.log")],
                        tmp / "origin.out", "origin (nginx, 1 worker) on the load core")
    gw.wait_listening(origin_port, oproc)
    gw.wait_listening(status_port, oproc)
    backends: dict = {}
    bprocs: dict[str, object] = {}
    need = {VARIANTS[v].get("backend") for v in variants} - {None}
    if "redis" in need:
        rport = gw.free_port()
        p = PROCS.start("redis", ["taskset", "-c", L, "redis-server", "--bind", "127.0.0.1", "--port", str(rport),
                                  "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                        tmp / "redis.out", "Redis (no persistence) on the load core")
        gw.wait_listening(rport, p)
        backends["redis"], bprocs["redis"] = f"redis://127.0.0.1:{rport}", p
    if "memcached" in need:
        mport = gw.free_port()
        p = PROCS.start("memcached", ["taskset", "-c", L, "memcached", "-l", "127.0.0.1", "-p", str(mport), "-U", "0",
                                      "-t", "1", "-m", "64"] + (["-u", "root"] if os.geteuid() == 0 else []),
                        tmp / "memcached.out", "memcached (1 thread) on the load core")
        gw.wait_listening(mport, p)
        backends["memcached"], bprocs["memcached"] = f"127.0.0.1:{mport}", p

    # -- the gateway, alone on the server core
    port, admin_port, fast_port = gw.free_port(), gw.free_port(), gw.free_port()
    cfg = sekisho_conf(variants, tmp, port, admin_port, origin_port, backends, fast_port)
    port_of = {v: fast_port if VARIANTS[v].get("fast") else port for v in variants}
    cpath = tmp / "sekisho.yaml"
    cpath.write_text(cfg)
    vargv = [bin_, "validate", "-c", str(cpath)]
    record(vargv, "validate the config")
    v = subprocess.run(vargv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if v.returncode != 0:
        raise SystemExit(f"config rejected by `sekisho validate`:\n{v.stdout}\n{cfg}")
    glog = tmp / "sekisho.out"
    gproc = PROCS.start("sekisho", ["taskset", "-c", S, bin_, "serve", "-c", str(cpath), "--workers", "1"],
                        glog, "sekisho, one worker, alone on the server core")
    gw.wait_listening(port, gproc)
    gw.wait_listening(admin_port, gproc)
    time.sleep(0.5)

    first = {k: Path(f).read_text().split("\n", 1)[0] for k, f in tokens["files"].items()}
    checks = {}
    for var in variants:
        tk = VARIANTS[var]["tokens"]
        checks[var] = sanity(var, port_of[var], args.host, first.get(tk) if tk else None)
        log(f"{var}: sanity {'ok' if checks[var]['ok'] else checks[var].get('error')}")
    affinity = {"sekisho": gw.thread_affinity(gproc.pid), "origin": gw.thread_affinity(oproc.pid),
                **{k: gw.thread_affinity(p.pid) for k, p in bprocs.items()}}

    scripts = {}
    for var in variants:
        tk = VARIANTS[var]["tokens"]
        sp = tmp / f"wrk-{var}.lua"
        sp.write_text(lua_script(var, args.host, tokens["files"].get(tk) if tk else None))
        scripts[var] = str(sp)
    def wrk_cmd(var: str, d: float, offset: int) -> list[str]:
        return ["taskset", "-c", L, "wrk", "-t1", f"-c{args.connections}", f"-d{int(d) if float(d).is_integer() else d}s",
                "--latency", "-s", scripts[var], f"http://127.0.0.1:{port_of[var]}", "--", str(offset)]

    for var in variants:
        record(wrk_cmd(var, args.duration, 0), f"load on {var} (every measured run; the last number is the id offset)")

    seq = [0]

    def one_run(var: str, duration: float, rnd: int, pos: int, warm: bool) -> dict:
        rec: dict = {"variant": var, "round": rnd, "position": pos, "warmup": warm}
        if gproc.poll() is not None:
            rec["error"] = f"gateway exited with {gproc.returncode}\n{gw.tail(glog)}"
            return rec
        seq[0] += 1
        argv = wrk_cmd(var, duration, seq[0] * 100_000_000)
        rec["command"] = " ".join(shlex.quote(a) for a in argv)
        rec["loadavg"] = open("/proc/loadavg").read().split()[0]
        gw.reset_peak_rss(gproc.pid)
        m0, st0 = route_metrics(admin_port), gw.stub_status(status_port)
        g0, o0 = gw.proc_cpu_ticks(gproc.pid), gw.proc_cpu_ticks(oproc.pid)
        b0 = {k: gw.proc_cpu_ticks(p.pid) for k, p in bprocs.items()}
        ps0, t0 = gw.proc_stat(), time.monotonic()
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
        wall, ps1 = time.monotonic() - t0, gw.proc_stat()
        alive = gproc.poll() is None
        g1 = gw.proc_cpu_ticks(gproc.pid) if alive else g0
        o1 = gw.proc_cpu_ticks(oproc.pid)
        b1 = {k: gw.proc_cpu_ticks(p_.pid) for k, p_ in bprocs.items()}
        time.sleep(0.2)  # releases of the last in-flight requests
        m1, st1 = route_metrics(admin_port), gw.stub_status(status_port)
        rec["raw"] = out
        rec["wrk_exit"] = p.returncode
        rec.update(gw.parse_wrk(out))
        if alive:
            rec["gateway_VmHWM"] = gw.proc_status(gproc.pid).get("VmHWM")
        else:
            rec["error"] = f"gateway exited with {gproc.returncode} during the run\n{gw.tail(glog)}"
        n = rec.get("requests") or 0
        wrk_ticks = (ru.ru_utime + ru.ru_stime) * CLK_TCK
        gt, ot = g1 - g0, o1 - o0
        bt = {k: b1[k] - b0[k] for k in b0}
        rec["wall_s"] = wall
        rec["gateway_cpu_s"] = gt / CLK_TCK
        rec["wrk_cpu_pct"] = 100.0 * (ru.ru_utime + ru.ru_stime) / wall
        if n:
            rec["gateway_cpu_us_per_req"] = 1e6 * gt / CLK_TCK / n
            rec["origin_cpu_us_per_req"] = 1e6 * ot / CLK_TCK / n
            rec["wrk_cpu_us_per_req"] = 1e6 * wrk_ticks / CLK_TCK / n
            for k, t in bt.items():
                rec[f"{k}_cpu_us_per_req"] = 1e6 * t / CLK_TCK / n
        all_ = gw.stat_delta(ps0, ps1, "cpu")
        rec["steal_pct"] = all_["steal_pct"]
        for c in (args.load_cpu, args.server_cpu):
            d = gw.stat_delta(ps0, ps1, f"cpu{c}")
            rec[f"steal_pct_cpu{c}"], rec[f"idle_pct_cpu{c}"] = d["steal_pct"], d["idle_pct"]
        other = all_["busy_ticks"] - wrk_ticks - gt - ot - sum(bt.values())
        rec["other_load_cores"] = max(0.0, other / CLK_TCK / wall)
        if st0 and st1:
            rec["origin_new_conns"] = st1["accepts"] - st0["accepts"] - 1
            rec["origin_requests"] = st1["requests"] - st0["requests"] - 1
        rec["policy_counters"] = metric_delta(m0.get(var, {}), m1.get(var, {}))
        rec["errors"] = sum(rec["socket_errors"].values()) + rec["non_2xx_3xx"]
        if "rps" not in rec:
            rec["error"] = (rec.get("error", "") + f" wrk output not parsed (exit {p.returncode})").strip()
        if exclusion(rec):
            rec["excluded"] = exclusion(rec)
        return rec

    runs: list[dict] = []
    log(f"warm-up: {args.warmup:g} s per variant")
    for i, var in enumerate(variants):
        runs.append(one_run(var, args.warmup, 0, i, True))
        time.sleep(args.pause)
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(variants)
        order = variants[k:] + variants[:k]
        for pos, var in enumerate(order):
            r = one_run(var, args.duration, rnd, pos, False)
            runs.append(r)
            if "rps" in r:
                log(f"round {rnd}/{args.rounds} {var:17s} {r['rps']:8.0f} req/s  p99 {r.get('p99_ms', 0):6.2f} ms  "
                    f"gateway {r.get('gateway_cpu_us_per_req') or 0:6.1f} us/req  steal {r['steal_pct']:4.1f}%  "
                    f"other {r['other_load_cores']:.2f} cores  errors {r['errors']}"
                    + (f"  EXCLUDED: {r['excluded']}" if r.get("excluded") else ""))
            else:
                log(f"round {rnd}/{args.rounds} {var}: {r.get('error')}")
            time.sleep(args.pause)
    finished = _dt.datetime.now(_dt.timezone.utc)
    final_metrics = route_metrics(admin_port)
    res = {
        "started": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds"),
        "git": git, "machine": machine, "installed_packages": installed, "build": build, "sekisho": sk_info,
        "params": {"duration_s": args.duration, "rounds": args.rounds, "connections": args.connections,
                   "warmup_s": args.warmup, "pause_s": args.pause, "variants": variants, "host": args.host,
                   "load_cpu": args.load_cpu, "server_cpu": args.server_cpu, "quick": args.quick,
                   "unique_tokens": args.unique_tokens, "backend_timeout": BACKEND_TIMEOUT},
        "jwt_cache_size_key": has_cache_size,
        "skipped_variants": skipped,
        "tokens": {"counts": tokens["counts"], "bytes": tokens["sample_token_bytes"]},
        "openssl_reference": crypto_ref,
        "notes": args.note, "reading": args.reading,
        "variants": {v: {"what": VARIANTS[v]["what"], "sanity": checks[v], "script": Path(scripts[v]).read_text()}
                     for v in variants},
        "config": cfg, "origin_config": ocfg, "thread_cpus": affinity,
        "gateway_log_tail": gw.tail(glog, 30),
        "final_policy_counters": final_metrics,
        "commands": gw.COMMANDS, "runs": runs,
    }
    res["summary"] = summarize(res)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(render_md(res))
    log(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    print(summary_table(res))
    return 0


# ---------------------------------------------------------------------------
# summary

med_range, f, mr = gw.med_range, gw.f, gw.mr


def summarize(res: dict) -> dict:
    # runs where the policy did not run normally (see one_run) are not in the medians
    measured = [r for r in res["runs"] if not r["warmup"] and "rps" in r and not r.get("excluded")]
    conns = res["params"]["connections"]
    s: dict = {"per_variant": {}, "vs_plain": {}}
    for v in res["params"]["variants"]:
        rs = [r for r in measured if r["variant"] == v]
        counters: dict[str, float] = {}
        for r in rs:
            for k, x in r.get("policy_counters", {}).items():
                counters[k] = counters.get(k, 0.0) + x
        backend = VARIANTS[v].get("backend")
        s["per_variant"][v] = {
            "runs": len(rs), "runs_planned": len([r for r in res["runs"] if not r["warmup"] and r["variant"] == v]),
            "rps": med_range([r["rps"] for r in rs]),
            "p50_ms": med_range([r.get("p50_ms") for r in rs]),
            "p99_ms": med_range([r.get("p99_ms") for r in rs]),
            "gateway_cpu_us_per_req": med_range([r.get("gateway_cpu_us_per_req") for r in rs]),
            "origin_cpu_us_per_req": med_range([r.get("origin_cpu_us_per_req") for r in rs]),
            "wrk_cpu_us_per_req": med_range([r.get("wrk_cpu_us_per_req") for r in rs]),
            "backend": backend,
            "backend_cpu_us_per_req": med_range([r.get(f"{backend}_cpu_us_per_req") for r in rs]) if backend else None,
            "peak_rss_kib": max([r["gateway_VmHWM"] for r in rs if r.get("gateway_VmHWM")], default=None),
            "steal_pct": med_range([r["steal_pct"] for r in rs]),
            "other_load_cores": med_range([r["other_load_cores"] for r in rs]),
            "idle_pct_server": med_range([r.get(f"idle_pct_cpu{res['params']['server_cpu']}") for r in rs]),
            "idle_pct_load": med_range([r.get(f"idle_pct_cpu{res['params']['load_cpu']}") for r in rs]),
            "wrk_cpu_pct": med_range([r["wrk_cpu_pct"] for r in rs]),
            "errors": sum(r.get("errors", 0) for r in res["runs"] if not r["warmup"] and r["variant"] == v),
            "excluded": [f"round {r['round']}: {r['excluded']}" for r in res["runs"]
                         if not r["warmup"] and r["variant"] == v and r.get("excluded")],
            "requests": sum(r.get("requests", 0) for r in rs),
            "origin_requests": sum(r.get("origin_requests", 0) for r in rs),
            "policy_counters": counters,
            "counter_slack": conns * max(len(rs), 1),
        }
    by_round: dict = {}
    for r in measured:
        by_round.setdefault(r["round"], {})[r["variant"]] = r
    key = "gateway_cpu_us_per_req"
    for v in res["params"]["variants"]:
        if v == "plain":
            continue
        pairs = [(rr[v], rr["plain"]) for rr in by_round.values() if v in rr and "plain" in rr
                 and rr[v].get(key) and rr["plain"].get(key)]
        s["vs_plain"][v] = {
            "paired_rounds": len(pairs),
            "added_cpu_us": med_range([a[key] - b[key] for a, b in pairs]),
            "cpu_ratio": med_range([a[key] / b[key] for a, b in pairs]),
            "rps_ratio": med_range([a["rps"] / b["rps"] for a, b in pairs]),
            "added_p50_ms": med_range([a["p50_ms"] - b["p50_ms"] for a, b in pairs if "p50_ms" in a and "p50_ms" in b]),
        }
    return s


def checks_of(v: str, d: dict) -> tuple[str, str]:
    """(what the counters say, verdict) for one variant over its measured runs."""
    c, n, slack = d["policy_counters"], d["requests"], d["counter_slack"]

    def near(x: float) -> bool:
        return 0 <= x - n <= slack

    def g(prefix: str) -> float:
        return sum(x for k, x in c.items() if k.startswith(prefix))
    if v == "plain":
        return "no policy counters", "ok" if not c else "**unexpected counters**"
    if v.startswith("jwt"):
        allowed, failed = g("sekisho_auth_allowed_total"), g("sekisho_auth_failures_total")
        hits = sum(x for k, x in c.items() if "cache_hits" in k)
        txt = f"auth allowed {allowed:,.0f}, failures {failed:,.0f}"
        if any("cache_hits" in k for k in c) or hits:
            txt += f", JWT cache hits {hits:,.0f} ({100 * hits / allowed if allowed else 0:.1f} %)"
        # the *_unique and nocache variants exist to show signature checks: hits would defeat them
        misses_wanted = v.endswith("_unique") or v == "jwt_nocache"
        if misses_wanted and hits > 0.01 * max(allowed, 1):
            return txt, "**CHECK: cache hits in a variant meant to miss**"
        return txt, "ok" if near(allowed) and not failed else "**CHECK**"
    if v.startswith("ratelimit"):
        ok_, lim = g("sekisho_ratelimit_decisions_total{decision=allowed"), g("sekisho_ratelimit_decisions_total{decision=limited")
        fb, be = g("sekisho_ratelimit_fallbacks_total"), g("sekisho_ratelimit_backend_errors_total")
        txt = f"allowed {ok_:,.0f}, limited {lim:,.0f}" + (f", fallbacks {fb:,.0f}, backend errors {be:,.0f}"
                                                          if v.endswith("redis") else "")
        return txt, "ok" if near(ok_) and not lim and not fb and not be else "**CHECK**"
    if v.startswith("lock"):
        acq = g("sekisho_lock_requests_total{outcome=acquired")
        rel = g("sekisho_lock_releases_total{result=released")
        bad = sum(x for k, x in c.items() if k.startswith("sekisho_lock_requests_total") and "acquired" not in k)
        lost, be = g("sekisho_lock_releases_total{result=lost"), g("sekisho_lock_backend_errors_total")
        txt = f"acquired {acq:,.0f}, released {rel:,.0f}, busy/failed {bad:,.0f}, lost {lost:,.0f}, backend errors {be:,.0f}"
        return txt, "ok" if near(acq) and 0 <= acq - rel <= slack and not bad and not lost and not be else "**CHECK**"
    return "", ""


def summary_table(res: dict) -> str:
    s = res["summary"]
    out = ("| variant | req/s median (min–max) | p50 ms | p99 ms median (min–max) | gateway CPU µs/req median (min–max) "
           "| added CPU µs/req vs plain | CPU ratio vs plain | req/s ratio vs plain | backend CPU µs/req | errors | runs |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n")
    for v, d in s["per_variant"].items():
        vp = s["vs_plain"].get(v)
        be = f"{d['backend']} {f(d['backend_cpu_us_per_req']['median'])}" if d["backend"] and d["backend_cpu_us_per_req"] else "–"
        out += (f"| {v} | {mr(d['rps'], 0)} | {f(d['p50_ms']['median'] if d['p50_ms'] else None, 2)} | {mr(d['p99_ms'], 2)} "
                f"| {mr(d['gateway_cpu_us_per_req'])} "
                f"| {mr(vp['added_cpu_us']) if vp else '(baseline)'} | {mr(vp['cpu_ratio'], 2) if vp else '1'} "
                f"| {mr(vp['rps_ratio'], 2) if vp else '1'} | {be} | {d['errors']} | {d['runs']}/{d['runs_planned']} |\n")
    return out


def render_md(res: dict) -> str:
    p, g, m, s = res["params"], res["git"], res["machine"], res["summary"]
    L = ["# Edge policy benchmark: cost per request of JWT, rate limits and locks\n",
         "Generated by `bench/policies.py`; overwritten on every run, git history keeps the older ones. "
         "How to run and read it: `bench/README.md`.\n"]
    dirty = "**dirty**" if g["dirty"] else "clean"
    sk = res["sekisho"]
    L.append(f"- date: {res['started']} → {res['finished']} (UTC)")
    L.append(f"- commit: `{g['commit']}` ({g['subject']}); tree outside `bench/`: {dirty}"
             + (f" ({g['dirty_count']} paths, diff fingerprint `{g['diff_sha256']}`)" if g["dirty"] else ""))
    L.append(f"- sekisho binary: `{sk['version']}`, sha256 `{sk['sha256'][:16]}…`, built {sk['mtime']}"
             + (f" (build took {res['build']['build_seconds']} s)" if res["build"] else " (not rebuilt by this run)"))
    L.append("- verified-token JWT cache (`auth.jwt.cache_size`) in this binary: "
             + ("**yes** (default 10,000 entries)" if res["jwt_cache_size_key"] else "**no**: every JWT request checks the signature"))
    L.append(f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), kernel {m['kernel']}, {m['os']}; "
             f"load average at start {m['loadavg_at_start'].split()[0:3]}")
    L.append(f"- tools: {m['nginx']}; {m['wrk']}; {m['redis'].split(' sha=')[0]}; {m['memcached']}; Python {m['python']}; {m['rustc']}")
    L.append(f"- parameters: {p['rounds']} rounds × {p['duration_s']:g} s per variant, {p['connections']} connections, "
             f"gateway alone on core {p['server_cpu']}; wrk (1 thread), origin, Redis, memcached on core {p['load_cpu']}; "
             f"warm-up {p['warmup_s']:g} s per variant; {p['unique_tokens']:,} distinct tokens for the `*_unique` variants; "
             f"backend timeout {p['backend_timeout']}" + ("; **--quick smoke run**" if p["quick"] else ""))
    L.append("- token sizes (bytes): " + ", ".join(f"{k} {v}" for k, v in res["tokens"]["bytes"].items()))
    ref = res.get("openssl_reference") or {}
    if "rsa2048_verify_us" in ref or "p256_verify_us" in ref:
        L.append(f"- reference, one signature check by OpenSSL on the gateway core (`{ref['command']}`): "
                 f"RSA-2048 verify {f(ref.get('rsa2048_verify_us'))} µs, P-256 ECDSA verify {f(ref.get('p256_verify_us'))} µs")
    for k, why in res.get("skipped_variants", {}).items():
        L.append(f"- {k} not run: {why}")
    for n in res["notes"]:
        L.append(f"- note: {n}")
    for v, d in res["variants"].items():
        if not d["sanity"].get("ok"):
            L.append(f"- **{v} sanity check failed**: {d['sanity'].get('error')}")
    for v, d in s["per_variant"].items():
        for x in d["excluded"]:
            L.append(f"- {v}, {x}: run left out of the medians (the policy did not run normally in it)")
        if d["errors"]:
            L.append(f"- **{v}: {d['errors']} errors** (non-2xx/3xx or socket errors) over its runs, left-out ones included")
        if d["runs"] < d["runs_planned"]:
            L.append(f"- **{v}: only {d['runs']} of {d['runs_planned']} runs measured**")
    L.append("")
    L.append("## Results (medians over rounds; min–max in parentheses)\n")
    L.append(summary_table(res))
    L.append("""- **gateway CPU µs/req**: user+sys CPU of the gateway process (all threads, `/proc/PID/stat`) over the run
  ÷ requests wrk completed. It is the figure to read on this shared VM; req/s and latency move with steal and
  with the other tenants of the machine.
- **added CPU µs/req vs plain** and the ratios are computed per round against the `plain` run of the same round
  (runs seconds to minutes apart), then the median and range over rounds are shown.
- **backend CPU µs/req**: CPU of redis-server / memcached per request over the same run; it is on the load
  core, not in the gateway figure.
- req/s is what one gateway worker on one core does while the other core runs wrk, the origin and the backends;
  look at the idle columns below to see which core was the limit.
""")
    if res.get("reading"):
        L.append("## Reading\n\n" + res["reading"].strip() + "\n")
    L.append("## Machine conditions per variant (medians over its runs)\n")
    L.append(f"| variant | steal % | other load, cores | idle % gateway core {p['server_cpu']} | idle % load core {p['load_cpu']} "
             "| wrk CPU % | wrk µs/req | origin µs/req | peak RSS MiB |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    md = lambda x, nd=1: f(x["median"], nd) if x else "–"
    for v, d in s["per_variant"].items():
        L.append(f"| {v} | {md(d['steal_pct'])} | {md(d['other_load_cores'], 2)} | {md(d['idle_pct_server'])} "
                 f"| {md(d['idle_pct_load'])} | {md(d['wrk_cpu_pct'], 0)} | {md(d['wrk_cpu_us_per_req'])} "
                 f"| {md(d['origin_cpu_us_per_req'])} | {f(d['peak_rss_kib'] / 1024 if d['peak_rss_kib'] else None)} |")
    L.append("\n**Other load** is the busy CPU time of the whole machine minus what wrk, the gateway, the origin and "
             "the backends used: other builds, tests and benchmarks running at the same time.\n")
    L.append("## Checks\n")
    L.append("| variant | sanity | policy counters over the measured runs (gateway `/metrics`) | requests wrk / origin | verdict |")
    L.append("|---|---|---|---|---|")
    for v, d in s["per_variant"].items():
        san = res["variants"][v]["sanity"]
        st = "ok" + (f" (no token: {san['without_token']})" if "without_token" in san else "") if san.get("ok") else san.get("error", "–")
        txt, verdict = checks_of(v, d)
        o_ok = 0 <= d["origin_requests"] - d["requests"] <= d["counter_slack"]
        if not o_ok:
            verdict = "**ORIGIN MISMATCH**"
        L.append(f"| {v} | {st} | {txt} | {d['requests']:,} / {d['origin_requests']:,} | {verdict} |")
    L.append("\nCounters may exceed wrk's count by up to one request per connection and run (in flight when wrk stops). "
             "`ok` means: every request went through the policy, nothing was limited or busy, Redis/memcached never "
             "failed or fell back, every lock taken was released, and the origin saw every request.\n")
    tc = res.get("thread_cpus", {})
    L.append("Threads pinned to CPUs: " + "; ".join(f"{k}: {', '.join(x) or '–'}" for k, x in tc.items()) + "\n")
    L.append("## Every run, in order\n")
    L.append("| round | pos | variant | req/s | p50 ms | p99 ms | gateway µs/req | backend µs/req | steal % | other load | idle % gw core | idle % load core | errors | left out because |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["runs"]:
        rd = "warm-up" if r["warmup"] else str(r["round"])
        if "rps" not in r:
            L.append(f"| {rd} | {r['position']} | {r['variant']} | {(r.get('error') or '').splitlines()[0] if r.get('error') else ''} ||||||||||")
            continue
        be = VARIANTS[r["variant"]].get("backend")
        L.append(f"| {rd} | {r['position']} | {r['variant']} | {f(r['rps'], 0)} | {f(r.get('p50_ms'), 2)} | {f(r.get('p99_ms'), 2)} "
                 f"| {f(r.get('gateway_cpu_us_per_req'))} | {f(r.get(f'{be}_cpu_us_per_req')) if be else '–'} "
                 f"| {f(r['steal_pct'])} | {f(r['other_load_cores'], 2)} | {f(r.get('idle_pct_cpu' + str(p['server_cpu'])))} "
                 f"| {f(r.get('idle_pct_cpu' + str(p['load_cpu'])))} | {r['errors']} | {r.get('excluded', '')} |")
    L.append("")
    L.append("## How it was measured\n")
    L.append(f"""1. One `sekisho serve --workers 1` (release build), `taskset -c {p['server_cpu']}`, alone on that core. Its config
   has one route per variant (`/<variant>/…`), all to one cluster: the origin of `bench/gateway.py` (nginx, one
   worker, `return 200 "ok\\n"`), which runs on core {p['load_cpu']} with wrk, Redis and memcached.
2. Keys: `openssl genrsa 2048` and a P-256 key; tokens signed in Python (`cryptography`), `exp` 12 h ahead,
   header `kid: k1`. `jwt` sends one token on every request; `*_unique` cycle through {p['unique_tokens']:,} distinct
   tokens (each comes back only after all the others: more than the default 10,000-entry JWT cache holds, which
   is cleared per shard when full, so each of these requests checks a signature).
3. Every variant runs the same wrk Lua script shape: `GET /<variant>/items/<n>?id=<n>`, n counting up from a
   per-run offset, so lock keys `k/<n>` never collide and each request takes and releases its own lock.
4. Warm-up: every variant once for {p['warmup_s']:g} s (discarded; fills the connection pools, the Redis and
   memcached connections, and the JWT cache for `jwt`). Then {p['rounds']} rounds; round r runs the variant list rotated
   by r-1. Per run: `wrk -t1 -c{p['connections']} -d{p['duration_s']:g}s --latency`; before/after: `/proc/PID/stat` of the gateway,
   origin, Redis, memcached; `/proc/stat` (steal, idle per core, busy); the gateway's `/metrics` (policy
   counters for the variant's route); the origin's `stub_status`. wrk's own CPU comes from `wait4` rusage.
""")
    L.append("## Exact commands\n")
    L.append("Ports and paths are picked per invocation; the ones below are this run's.\n")
    L.append("```sh")
    for c in res["commands"]:
        L.append(f"# {c['purpose']}\n{c['command']}")
    L.append("```\n")
    L.append("## Gateway config\n\n```yaml\n" + res["config"] + "```\n")
    first = next(iter(res["variants"].values()))
    jwtv = next((d for v, d in res["variants"].items() if v.endswith("_unique")), first)
    L.append("## wrk script (jwt_unique; the others differ in prefix and token file)\n\n```lua\n" + jwtv["script"] + "```\n")
    if res.get("gateway_log_tail"):
        L.append("<details><summary>gateway output (tail)</summary>\n\n```text\n" + res["gateway_log_tail"] + "\n```\n</details>\n")
    L.append("<details><summary>raw wrk output of every run</summary>\n")
    for r in res["runs"]:
        rd = "warm-up" if r["warmup"] else f"round {r['round']}"
        L.append(f"### {rd}, {r['variant']}\n")
        if "command" in r:
            L.append(f"`{r['command']}`\n")
        L.append("```text\n" + (r.get("raw") or r.get("error") or "").rstrip() + "\n```\n")
    L.append("</details>\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
