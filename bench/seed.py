"""Seed the benchmark's N-account organization x 3 regions into a moto server (audit_bedrock.standin.estate.seed_bench).

Run standalone:  python bench/seed.py --endpoint http://127.0.0.1:5000 --accounts 200 [--workers 8]
It prints one JSON line: {"organization_id", "management", "accounts": {name: id}, "profiles": {...}, "seconds"}.
Account i gets profile standin.estate.bench_profile(i), so every estate of the same size has the same mix; the
profiles are made of the same builders as the demo estate.
"""

from __future__ import annotations

import argparse
import json
import sys

from audit_bedrock.standin.estate import seed_bench


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--accounts", type=int, default=200, help="accounts including the management account")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--no-warm-ec2", action="store_true", help="leave moto's EC2 backends to the first scan")
    ns = p.parse_args(argv)
    if ns.accounts < 1:
        p.error("--accounts must be at least 1")
    print(json.dumps(seed_bench(ns.endpoint, ns.accounts, ns.workers, warm_ec2=not ns.no_warm_ec2)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
