"""The audit-bedrock benchmark: a seeded N-account organization behind a latency proxy, scanned as a whole process.

    python bench/run.py                       # 200 accounts x 3 regions, 40 ms per call, median of 3 runs
    python bench/run.py --accounts 200 1000   # several sizes; also reports the time ratio between them
    python bench/run.py --regions 3 17        # the 3 seeded regions, then the 17 enabled by default
    python bench/run.py --accounts 5 --latency-ms 0 --repeat 1   # the smoke run the tests use

For each size it starts a moto server subprocess on 127.0.0.1 (audit_bedrock.standin.server), seeds the
organization (bench/seed.py, its own process), starts the stand-in proxy (audit_bedrock.standin.proxy, as
bench/latency_proxy.py does) in front of it, and runs `audit-bedrock --org` with AWS_ENDPOINT_URL pointing at
the proxy, --repeat times. Per run it records wall time, the scanner's peak RSS and CPU time
(os.wait4 on that process), the stand-in's CPU time, and what the proxy saw on the wire: calls per account
and per account-region, repeated identical requests, and the peak number of requests in flight.

    python bench/run.py --standin replay --accounts 1000 5000 --regions 3 17 --repeat 1

With --standin replay nothing is seeded for the N accounts: once per run set an 8-account template
organization (the management account and one member per profile) is seeded into moto and scanned through
the proxy with each region set, which records moto's answers (audit_bedrock.standin.replay); then, for each
size, a replay server subprocess serves the N-account organization from that recording (the same names,
OUs and profiles as seed_bench(N), deterministic ids), behind the same latency proxy. A run fails if the
replay met a request its recording does not hold. tests/unit/standin/test_replay.py checks that a bench
organization scanned on moto and on replay gives the same findings, coverage and calls.

Lower bound. At most --max-workers calls are in flight, and an account's regions run concurrently, so with L
seconds of latency per call no scan can beat
    bound = L * (discovery_calls + max(member_calls / max_workers, longest_account_chain))
where discovery_calls are the caller's serial Organizations/STS reads before the first account starts and an
account's chain is its calls outside regions (STS, IAM) plus those of its busiest region (the bound assumes
every region of an account in flight at once; the scanner runs at most 8).

With --regions 17 the organization is the same (the mixes live in the first 3 regions) and the scanner reads the
17 regions AWS enables by default; the other 14 have logging off (3 calls each: the logging configuration,
ListMetrics, LookupEvents), as in most real accounts. The
report gives wall / bound ("ratio"), medians over the repeats, and writes bench/results/<timestamp>.json/.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from audit_bedrock.standin import replay, server
from audit_bedrock.standin.estate import bench_mix, bench_ous

HERE = Path(__file__).resolve().parent
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")  # the seeded ones (standin.estate.BENCH_REGIONS)
# The 17 regions AWS enables by default that offer Bedrock (opt-in regions come on top in real organizations).
DEFAULT_REGIONS = ("ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-southeast-1",
                   "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2",
                   "eu-west-3", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2")
REGION_SETS = {3: REGIONS, 17: DEFAULT_REGIONS}
DEFAULT_WORKERS = 16  # the scanner's default --max-workers; used for the bound when --max-workers is not given
SCAN_ENV = {
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
DROP_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV and not k.startswith("AWS_ENDPOINT_URL")}
    env.update(SCAN_ENV)
    env.update(extra)
    return env


@contextmanager
def moto_server(stock: bool = False) -> Iterator[tuple[str, int]]:
    """A moto server subprocess on a free loopback port: (url, pid). Unless `stock`, with the stand-in's
    access-key index, which makes moto's per-request access-key -> account lookup O(1)."""
    with server.process(key_index=not stock, env=_env()) as moto:
        yield moto.url, moto.pid


def tls_material(directory: Path) -> tuple[str, str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl), and a CA bundle of certifi's roots plus it, so the
    scanner verifies the proxy and loads a real-size bundle: (cert, key, bundle)."""
    import certifi

    cert, key, bundle = directory / "proxy-cert.pem", directory / "proxy-key.pem", directory / "ca-bundle.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    bundle.write_bytes(Path(certifi.where()).read_bytes() + cert.read_bytes())
    return str(cert), str(key), str(bundle)


@contextmanager
def listening(args: list[str], what: str) -> Iterator[tuple[str, int]]:
    """A subprocess that prints "LISTENING <url>" once it serves: (url, pid); stopped on exit."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"{what} did not start: {line!r}")
        yield line.split()[1], proc.pid
    finally:
        server.stop_process(proc)


def latency_proxy(upstream: str, latency_ms: float,
                  tls: tuple[str, str] | None = None) -> contextlib.AbstractContextManager[tuple[str, int]]:
    """The stand-in proxy (bench/latency_proxy.py) as a subprocess in front of `upstream`: (url, pid)."""
    args = [sys.executable, "-m", "audit_bedrock.standin.proxy", "--upstream", upstream, "--latency-ms",
            str(latency_ms), "--backdate-ingestion"]  # the bench's log streams: ingested when their events happened
    if tls:
        args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    return listening(args, "latency proxy")


@contextmanager
def standin(n: int, ns: argparse.Namespace) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """The stand-in serving the n-account bench organization: (url, pid, what seed_bench returns).

    moto: a moto subprocess, seeded by bench/seed.py. replay: audit_bedrock.standin.replay serving
    ns.recording (the template recorded once per run set) for n accounts; nothing is seeded."""
    if ns.standin == "replay":
        args = [sys.executable, "-m", "audit_bedrock.standin.replay", "--recording", str(ns.recording),
                "--accounts", str(n)]
        with listening(args, "replay stand-in") as (url, pid):
            yield url, pid, {"management": ns.recording_management, "profiles": bench_mix(n),
                             "ous": bench_ous(n), "seconds": 0.0}
        return
    with moto_server(ns.stock_moto) as (moto, moto_pid):
        yield moto, moto_pid, seed(moto, n, ns.seed_workers)


def record_template(ns: argparse.Namespace, directory: Path) -> float:
    """Record moto's answers to the template organization, scanned once per region set; seconds taken.

    Sets ns.recording (the saved Recording) and ns.recording_management."""
    t0 = time.perf_counter()

    def scan(url: str, regions: Sequence[str]) -> None:
        run = run_scan(url, directory / f"template-{len(regions)}", ns.max_workers, ns.formats, None,
                       tuple(regions))
        if run["exit_code"] not in (0, 3):
            raise RuntimeError(f"template scan failed (exit {run['exit_code']}):\n{run['stderr_tail']}")

    rec = replay.record_bench(scan, [REGION_SETS[k] for k in ns.regions], env=_env())
    ns.recording, ns.recording_management = directory / "recording.json", rec.management
    rec.save(ns.recording)
    return round(time.perf_counter() - t0, 2)


def proxy_call(url: str, path: str, method: str = "GET", cafile: str | None = None) -> dict[str, Any]:
    req = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux /proc), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(endpoint: str, accounts: int, workers: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "seed.py"), "--endpoint", endpoint, "--accounts",
                           str(accounts), "--workers", str(workers)], capture_output=True, text=True,
                          env=_env(), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{proc.stderr[-3000:]}")
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


def scanner_command() -> list[str]:
    exe = Path(sys.executable).with_name("audit-bedrock")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "audit_bedrock"]


SPAWN = Path(__file__).with_name("spawn.py")


def run_scan(proxy: str, out: Path, max_workers: int | None, formats: str | None,
             ca_bundle: str | None = None, regions: tuple[str, ...] = REGIONS) -> dict[str, Any]:
    """One `audit-bedrock --org` process: wall time, exit code, peak RSS and CPU from wait4."""
    args = [*scanner_command(), "--org", "--regions", ",".join(regions), "--output-dir", str(out), "-q", "-q",
            "--fail-on", "none"]
    if max_workers:
        args += ["--max-workers", str(max_workers)]
    if formats:
        args += ["--format", formats]
    extra = {"AWS_CA_BUNDLE": ca_bundle} if ca_bundle else {}
    with tempfile.TemporaryDirectory(prefix="bench-usage-") as tmp:
        usage_file = Path(tmp) / "usage.json"
        # through bench/spawn.py: a child spawned by this (large) process would report this process's peak RSS
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", str(SPAWN), str(usage_file), *args],
                                env=_env(AWS_ENDPOINT_URL=proxy, **extra), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _, err = proc.communicate()
        wall = time.perf_counter() - t0
        usage = json.loads(usage_file.read_text(encoding="utf-8")) if usage_file.exists() else {}
    if proc.returncode != 0 or not usage:
        raise RuntimeError(f"bench/spawn.py failed ({proc.returncode}): {err.decode(errors='replace')[-800:]}")
    return {"wall_s": round(wall, 3), "exit_code": usage["exit_code"],
            "peak_rss_mb": round(usage["maxrss_kb"] / 1024, 1),
            "cpu_s": round(usage["cpu_s"], 2), "stderr_tail": err.decode(errors="replace")[-800:]}


def _lower_bound(wire: dict[str, Any], latency_s: float, workers: int, caller: str) -> dict[str, Any]:
    ops = wire["by_operation"]
    discovery = sum(n for op, n in ops.items() if op.startswith("organizations:")) + ops.get(
        "sts:GetCallerIdentity", 0)
    per_account = dict(wire["by_account"])
    per_account[caller] = per_account.get(caller, 0) - discovery
    member = sum(per_account.values())
    regional, longest = wire.get("regional_calls_by_account", {}), wire.get("longest_region_by_account", {})
    chain = max((n - regional.get(a, 0) + longest.get(a, 0) for a, n in per_account.items()), default=0)
    bound = latency_s * (discovery + max(member / workers, chain))
    return {"discovery_calls": discovery, "member_calls": member, "longest_account_chain": chain,
            "lower_bound_s": round(bound, 3)}


def measure(n: int, ns: argparse.Namespace) -> list[dict[str, Any]]:
    """Seed one organization of n accounts and scan it ns.repeat times with each region set of ns.regions."""
    workers = ns.max_workers or DEFAULT_WORKERS
    sizes: list[dict[str, Any]] = []
    with standin(n, ns) as (moto, moto_pid, seeded):
        print(f"[bench] {n} accounts on {ns.standin}, seeded in {seeded['seconds']} s ({seeded['profiles']})",
              file=sys.stderr)
        with ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
            cert, key, bundle = tls_material(Path(tmp)) if ns.tls else (None, None, None)
            proxy, proxy_pid = stack.enter_context(
                latency_proxy(moto, ns.latency_ms, (cert, key) if cert and key else None))
            for nregions in ns.regions:
                regions = REGION_SETS[nregions]
                runs: list[dict[str, Any]] = []
                for i in range(ns.warmup):
                    print(f"[bench] {n} accounts warm-up scan {i + 1}/{ns.warmup}", file=sys.stderr)
                    run_scan(proxy, Path(tmp) / f"warmup{i}", ns.max_workers, ns.formats, bundle, regions)
                for i in range(ns.repeat):
                    run = _one_run(proxy, proxy_pid, moto_pid, Path(tmp) / f"r{nregions}-run{i}", regions, cert,
                                   bundle, seeded, n, workers, ns)
                    if ns.standin == "replay":
                        _check_replay(moto, run)
                    runs.append(run)
                    print(f"[bench] {n} accounts x {nregions} regions run {i + 1}/{ns.repeat}: {run['wall_s']} s, "
                          f"{run['peak_rss_mb']} MB, {run['wire_calls']} calls, ratio {run['ratio']}, "
                          f"load {run['loadavg_1m']}", file=sys.stderr)
                sizes.append({"accounts": n, "regions": nregions, "seed_seconds": seeded["seconds"],
                              "profiles": seeded["profiles"], "ous": seeded.get("ous"), "runs": runs,
                              "median": _medians(runs)})
    return sizes


def _check_replay(url: str, run: dict[str, Any]) -> None:
    """Fail the run if the replay stand-in met a request its recording does not hold (it answered 500)."""
    stats = proxy_call(url, replay.CONTROL_PREFIX + "stats")
    run["replay_stats"] = stats["stats"]
    if stats["stats"].get("missed") or stats["misses"]:
        raise RuntimeError(f"the replay stand-in could not answer: {stats['misses'][:10]}")


def _one_run(proxy: str, proxy_pid: int, moto_pid: int, out: Path, regions: tuple[str, ...], cert: str | None,
             bundle: str | None, seeded: dict[str, Any], n: int, workers: int,
             ns: argparse.Namespace) -> dict[str, Any]:
    """One timed scan and what the proxy saw of it."""
    proxy_call(proxy, "/__proxy__/reset", "POST", cert)
    moto_cpu0, proxy_cpu0 = cpu_seconds(moto_pid), cpu_seconds(proxy_pid)
    load = os.getloadavg()[0]
    run = run_scan(proxy, out, ns.max_workers, ns.formats, bundle, regions)
    run["loadavg_1m"] = round(load, 2)
    run["moto_cpu_s"] = round(cpu_seconds(moto_pid) - moto_cpu0, 2)
    run["proxy_cpu_s"] = round(cpu_seconds(proxy_pid) - proxy_cpu0, 2)
    wire = proxy_call(proxy, "/__proxy__/stats", cafile=cert)
    run.update(_summarize(wire, out, seeded, n, ns.latency_ms / 1000.0, workers))
    run["ratio"] = round(run["wall_s"] / run["lower_bound_s"], 2) if run["lower_bound_s"] else None
    calls = max(1, run["wire_calls"])
    run["cpu_ms_per_call"] = round(1000 * run["cpu_s"] / calls, 3)
    run["moto_cpu_ms_per_call"] = round(1000 * run["moto_cpu_s"] / calls, 3)
    if run["exit_code"] not in (0, 3) or run["accounts_scanned"] != n:
        raise RuntimeError(f"scan {out.name} failed (exit {run['exit_code']}, "
                           f"{run['accounts_scanned']}/{n} scanned):\n{run['stderr_tail']}")
    if run["exit_code"] == 0:
        run.pop("stderr_tail")
    return run


def _summarize(wire: dict[str, Any], out: Path, seeded: dict[str, Any], n: int, latency_s: float,
               workers: int) -> dict[str, Any]:
    doc = json.loads((out / "findings.json").read_text())
    scanned = sum(1 for a in doc["scan"]["accounts"] if a["status"] == "scanned")
    cells = sum(1 for c in doc["coverage"] if c["status"] == "scanned")
    per_account = [v for k, v in wire["by_account"].items() if not k.startswith("key:")]
    per_region = wire["by_account_region_calls"]
    bound = _lower_bound(wire, latency_s, workers, seeded["management"])
    try:
        t0 = dt.datetime.fromisoformat(doc["scan"]["started_at"].replace("Z", "+00:00"))
        t1 = dt.datetime.fromisoformat(doc["scan"]["finished_at"].replace("Z", "+00:00"))
        doc_wall = (t1 - t0).total_seconds()
    except (KeyError, ValueError):
        doc_wall = float("nan")
    return {
        "accounts_scanned": scanned, "account_regions_scanned": cells, "findings": len(doc["findings"]),
        "scan_seconds_in_report": doc_wall,
        "scanner_api_calls": doc["scan"]["api_calls"], "wire_calls": wire["requests"],
        "wire_status": wire["status"], "max_in_flight": wire["max_in_flight"],
        "calls_per_account": round(wire["requests"] / max(1, n), 2),
        "calls_per_account_median": statistics.median(per_account) if per_account else 0,
        "calls_per_account_max": max(per_account, default=0),
        "calls_per_account_region": round(sum(per_region) / max(1, len(per_region)), 2),
        "calls_per_account_region_max": max(per_region, default=0),
        "unattributed_calls": sum(v for k, v in wire["by_account"].items() if k.startswith("key:")),
        "repeated_requests": wire["repeated_requests"], "repeated_examples": wire["repeated_examples"],
        "by_operation": wire["by_operation"], **bound,
        "moto_seconds_by_operation": wire.get("upstream_seconds_by_operation", {}),
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("wall_s", "peak_rss_mb", "cpu_s", "moto_cpu_s", "proxy_cpu_s", "wire_calls", "calls_per_account",
            "calls_per_account_region", "repeated_requests", "lower_bound_s", "ratio", "max_in_flight",
            "cpu_ms_per_call", "moto_cpu_ms_per_call", "loadavg_1m")
    return {k: (round(statistics.median(r[k] for r in runs), 3) if all(r.get(k) is not None for r in runs)
                else None) for k in keys}


def cli_startup(repeat: int = 5) -> dict[str, float]:
    """Median seconds of `audit-bedrock --help` and `--list-rules` as whole processes."""
    out: dict[str, float] = {}
    for flag in ("--help", "--list-rules"):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run([*scanner_command(), flag], env=_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
        out[flag] = round(statistics.median(times), 3)
    return out


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [f"audit-bedrock benchmark, {result['started_at']}: {cfg['latency_ms']:g} ms per call"
             f"{' over TLS' if cfg.get('tls') else ''}, "
             f"max-workers {cfg['max_workers']}, median of {cfg['repeat']} run(s), "
             f"{result['machine']['cpus']} CPUs (load {result['machine']['loadavg_at_start']}), "
             f"stand-in {cfg.get('standin', 'moto')}", "",
             "| accounts | regions | wall s | lower bound s | ratio | peak RSS MB | scanner CPU s "
             "| ms CPU/call | stand-in CPU s | stand-in ms/call | calls | calls/account | calls/account-region "
             "| repeated | load 1m |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in result["sizes"]:
        m = {k: ("n/a" if v is None else v) for k, v in s["median"].items()}
        lines.append(f"| {s['accounts']} | {s['regions']} | {m['wall_s']} | {m['lower_bound_s']} | {m['ratio']} "
                     f"| {m['peak_rss_mb']} | {m['cpu_s']} | {m['cpu_ms_per_call']} | {m['moto_cpu_s']} "
                     f"| {m['moto_cpu_ms_per_call']} | {m['wire_calls']} | {m['calls_per_account']} "
                     f"| {m['calls_per_account_region']} | {m['repeated_requests']} | {m['loadavg_1m']} |")
    for k, v in result.get("scaling", {}).items():
        lines.append(f"\nwall-time ratio {k}: {v}")
    st = result.get("cli_startup")
    if st:
        lines.append("\nstartup: " + ", ".join(f"`audit-bedrock {k}` {v} s" for k, v in st.items()))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--accounts", type=int, nargs="+", default=[200], metavar="N",
                   help="organization sizes, management account included (default 200)")
    p.add_argument("--regions", type=int, nargs="+", default=[3, 17], choices=sorted(REGION_SETS),
                   help="region sets to scan each organization with: 3 (the seeded ones) and/or 17 (every region "
                        "enabled by default); default both")
    p.add_argument("--latency-ms", type=float, default=40.0, help="latency added to every call (default 40)")
    p.add_argument("--repeat", type=int, default=3, help="scans per size; medians are reported (default 3)")
    p.add_argument("--max-workers", type=int, default=None, help="passed to audit-bedrock (default: its own)")
    p.add_argument("--format", dest="formats", default=None, help="passed to audit-bedrock (default: its own)")
    p.add_argument("--tls", action="store_true",
                   help="the proxy serves HTTPS (self-signed, openssl) and the scanner verifies it against "
                        "certifi's bundle plus that certificate, as against real endpoints")
    p.add_argument("--standin", choices=("moto", "replay"), default="moto",
                   help="what answers the scanner: moto seeded with the N accounts (default), or the replay "
                        "stand-in (audit_bedrock.standin.replay), moto's recorded answers for an 8-account "
                        "template served for N accounts: no seeding, little CPU per call")
    p.add_argument("--stock-moto", action="store_true",
                   help="run moto as shipped: its per-request account lookup scans every account, so moto's "
                        "CPU per call grows with the organization (see audit_bedrock.standin.server)")
    p.add_argument("--warmup", type=int, default=0, help="untimed scans before the timed ones (default 0)")
    p.add_argument("--seed-workers", type=int, default=8, help="threads seeding the organization (default 8)")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-startup", action="store_true", help="skip timing --help and --list-rules")
    ns = p.parse_args(argv)
    if any(n < 1 for n in ns.accounts) or ns.repeat < 1 or ns.warmup < 0:
        p.error("--accounts and --repeat must be at least 1, --warmup at least 0")
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result: dict[str, Any] = {
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "config": {"accounts": ns.accounts, "latency_ms": ns.latency_ms, "repeat": ns.repeat, "warmup": ns.warmup,
                   "tls": ns.tls, "moto": "stock" if ns.stock_moto else "standin key index (O(1) key lookup)",
                   "standin": ns.standin,
                   "max_workers": ns.max_workers or DEFAULT_WORKERS,
                   "regions": {str(k): list(REGION_SETS[k]) for k in ns.regions},
                   "formats": ns.formats or "default"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "sizes": [],
    }
    if not ns.no_startup:
        result["cli_startup"] = cli_startup()
    with tempfile.TemporaryDirectory(prefix="bench-template-") as template:
        if ns.standin == "replay":
            result["template_recording_s"] = record_template(ns, Path(template))
            print(f"[bench] template recorded on moto in {result['template_recording_s']} s", file=sys.stderr)
        for n in ns.accounts:
            result["sizes"].extend(measure(n, ns))
    walls = {s["accounts"]: s["median"]["wall_s"] for s in result["sizes"] if s["regions"] == ns.regions[-1]}
    sizes = sorted(walls)
    result["scaling"] = {f"{b}/{a}": round(walls[b] / walls[a], 2) for a, b in zip(sizes, sizes[1:], strict=False)
                         if walls[a] > 0}
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    ns.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (ns.results_dir / f"{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (ns.results_dir / f"{stamp}.md").write_text(md)
    print(md)
    print(f"wrote {ns.results_dir / (stamp + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
