"""Peak memory of a scan's result at N accounts x 17 regions, without AWS: judging, then each report written.

    python bench/memory.py --make-facts bench/results/facts17.json   # once: scan an 8-account bench org on moto
    python bench/memory.py --facts bench/results/facts17.json --accounts 1000 5000
    python bench/memory.py --facts F --accounts 5000 --profile judge   # cProfile one stage (judge | reports)

--make-facts starts a moto server (audit_bedrock.standin.server, its key index on), seeds the bench organization
(standin.estate.seed_bench: the management account and one member per bench profile), scans it across the 17
default regions with `audit-bedrock --org --save-facts`, and keeps the facts file.

Each size runs in its own process (a fresh peak RSS). That process replicates the facts' accounts to N accounts
under new ids and names (account i is template account i mod 8), feeds them one at a time to the scan's
Accumulator with the fix planner a default run builds (the HTML report shows the fixes), builds the result as
api.scan does, then writes the default reports into a temporary folder through api.write_reports, one format at a
time, as a run does. It prints one JSON line per size: the peak RSS (ru_maxrss) and the current RSS after
imports, after every account was judged, after the result was built, and after each report, with times.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The 17 regions AWS enables by default that offer Bedrock (as bench/run.py scans them).
DEFAULT_REGIONS = ("ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-southeast-1",
                   "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2",
                   "eu-west-3", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2")
TEMPLATE_ACCOUNTS = 8  # the management account and one member per bench profile


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_facts(path: Path) -> None:
    """Scan a seeded bench organization on moto across the 17 default regions and save its facts at `path`."""
    from audit_bedrock.standin import server
    from audit_bedrock.standin.estate import BENCH_CALLER, seed_bench

    with server.process(key_index=True) as moto:
        seed_bench(moto.url, TEMPLATE_ACCOUNTS)
        env = server.clean_env({k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
        env.update(AWS_ACCESS_KEY_ID=BENCH_CALLER["aws_access_key_id"],
                   AWS_SECRET_ACCESS_KEY=BENCH_CALLER["aws_secret_access_key"], AWS_DEFAULT_REGION="us-east-1",
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_ENDPOINT_URL=moto.url)
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([sys.executable, "-m", "audit_bedrock", "--org", "--regions",
                                   ",".join(DEFAULT_REGIONS), "--output-dir", out, "-q", "-q", "--fail-on", "none",
                                   "--format", "json", "--save-facts", str(path)], env=env, check=False)
    if proc.returncode not in (0, 3) or not path.exists():  # 3: incomplete (the mix has unreadable facts)
        raise SystemExit(f"the scan failed (exit {proc.returncode})")


def replicas(doc: dict[str, Any], n: int) -> Any:
    """n raw account documents: account i is template i mod len, under a new id and name (JSON text replaced)."""
    templates = [(a["account_id"], a.get("account_name") or "", json.dumps(a)) for a in doc["accounts"]]
    for i in range(n):
        src_id, src_name, text = templates[i % len(templates)]
        new_id = f"{900000000000 + i:012d}"
        text = text.replace(f'"{src_id}', f'"{new_id}').replace(f":{src_id}:", f":{new_id}:")
        if src_name:
            text = text.replace(f'"{src_name}"', f'"bench-{i:05d}"')
        yield json.loads(text)


def measure(facts: Path, n: int, profile: str | None) -> dict[str, Any]:
    """One size in this process."""
    from audit_bedrock import api, integrations
    from audit_bedrock.constants import DEFAULT_FORMATS
    from audit_bedrock.engine import Evaluator
    from audit_bedrock.facts import load_facts
    from audit_bedrock.findings import FindingBuilder
    from audit_bedrock.scan import Accumulator

    doc = load_facts(str(facts))
    options = api.RunOptions(output=api.OutputOptions(summary=False, progress=False))
    settings = api.load_settings(options)
    cfg = settings.config
    for module in ("html", "sarif"):  # the renderers' imports (jinja2) count as imports
        importlib.import_module(f"audit_bedrock.reports.{module}")
    gc.collect()
    out: dict[str, Any] = {"accounts": n, "regions": len(doc["scan"].get("regions") or ()),
                           "after_imports": {"peak_mb": round(peak_mb(), 1), "rss_mb": round(current_mb(), 1)}}
    prof = cProfile.Profile() if profile else None

    t0 = time.perf_counter()
    if prof and profile == "judge":
        prof.enable()
    planner = integrations.fix_planner(DEFAULT_FORMATS, cfg.min_retention_days)
    acc = Accumulator(Evaluator(list(settings.rules), cfg.rule_params()), FindingBuilder(cfg),
                      on_account=integrations.account_hook(planner))
    for raw in replicas(doc, n):
        acc.add(raw)
    if prof and profile == "judge":
        prof.disable()
    out["judged"] = {"peak_mb": round(peak_mb(), 1), "rss_mb": round(current_mb(), 1),
                     "seconds": round(time.perf_counter() - t0, 2)}
    t0 = time.perf_counter()
    m = doc["scan"]
    result = api._result(acc, m.get("organization_id"), str(m.get("caller_account", "")),
                         tuple(m.get("regions") or ()), str(m.get("started_at", "")), str(m.get("finished_at", "")),
                         int(m.get("api_calls", 0)))
    fix_plan = planner.plan() if planner is not None else None
    del acc, planner, doc
    gc.collect()
    out["findings"], out["coverage"] = len(result.findings), len(result.coverage)
    out["result"] = {"peak_mb": round(peak_mb(), 1), "rss_mb": round(current_mb(), 1),
                     "seconds": round(time.perf_counter() - t0, 2)}
    if prof and profile == "reports":
        prof.enable()
    with tempfile.TemporaryDirectory() as folder:
        for fmt in DEFAULT_FORMATS:
            t0 = time.perf_counter()
            one = api.RunOptions(output=api.OutputOptions(formats=(fmt,), output_dir=folder, summary=False,
                                                          progress=False))
            report = api.write_reports(result, settings, one, fix_plan=fix_plan)
            if report.failed:
                raise SystemExit(f"{fmt}: {report.failed[0]}")
            size = sum(Path(p).stat().st_size for p in report.written)
            gc.collect()
            out[fmt] = {"peak_mb": round(peak_mb(), 1), "rss_mb": round(current_mb(), 1),
                        "seconds": round(time.perf_counter() - t0, 2), "mb": round(size / 2**20, 1)}
    if prof:
        prof.disable()
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
    out["peak_mb"] = round(peak_mb(), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--make-facts", type=Path, metavar="PATH", help="scan the bench organization on moto, save facts")
    p.add_argument("--facts", type=Path, help="a --save-facts file of a 17-region scan")
    p.add_argument("--accounts", type=int, nargs="+", default=[1000], metavar="N")
    p.add_argument("--profile", choices=("judge", "reports"), help="cProfile this stage (to stderr)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # measure in this process
    ns = p.parse_args(argv)
    if ns.make_facts:
        make_facts(ns.make_facts)
        print(f"facts saved to {ns.make_facts}", file=sys.stderr)
        if not ns.facts:
            return 0
    if not ns.facts:
        p.error("--facts (or --make-facts) is required")
    for n in ns.accounts:
        if ns.one:
            print(json.dumps(measure(ns.facts, n, ns.profile)), flush=True)
            continue
        t0 = time.perf_counter()
        args = [sys.executable, __file__, "--one", "--facts", str(ns.facts), "--accounts", str(n)]
        if ns.profile:
            args += ["--profile", ns.profile]
        proc = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            print(json.dumps({"accounts": n, "exit": proc.returncode}), flush=True)
            continue
        line = json.loads(proc.stdout.strip().splitlines()[-1])
        line["wall_seconds"] = round(time.perf_counter() - t0, 1)
        line["load"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
