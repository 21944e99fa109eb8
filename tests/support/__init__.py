"""Test support around the AWS stand-in: a seeded demo estate per test process, fast retries, in-process CLI runs.

The stand-in itself (moto launcher, estate builders, fault/latency/counting proxy) is audit_bedrock.standin.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_bedrock.standin import estate
from audit_bedrock.standin.evidence import EvidenceAnswers, demo_answers
from audit_bedrock.standin.proxy import Proxy
from tests.conftest import moto_process

DEMO_SCAN_REGIONS = (*estate.DEMO_REGIONS, estate.DEMO_SKIPPED_REGION)  # the skipped one is not enabled


@dataclass(frozen=True)
class Estate:
    """A seeded moto server behind the stand-in's answering proxy: the proxy's URL (scan it) and the demo
    organization's account name -> id; `upstream` is moto itself (seed it)."""

    endpoint: str
    ids: dict[str, str]
    upstream: str = ""

    def name_of(self, account_id: str) -> str:
        return next(n for n, i in self.ids.items() if i == account_id)


@contextlib.contextmanager
def seeded_estate(seed: Callable[[str], dict[str, str]] | None = None) -> Iterator[Estate]:
    """A moto server in its own process on a free loopback port, seeded (default: the demo organization).

    Its own process, not ThreadedMotoServer: moto's backends are process globals, so two in-process
    servers (or one and a mock_aws test on the same xdist worker) would share, and collide on, state.
    """
    with moto_process() as url:
        ids = (seed or estate.seed_demo)(url)
        # moto has no LookupEvents (its HTTP 500 would be retried) and no log group deletion protection:
        # every scan of the estate goes through the proxy that answers them.
        answers = demo_answers(ids) if seed is None else EvidenceAnswers()
        with Proxy(url, answers=answers) as proxy:
            yield Estate(proxy.url, ids, url)


_SHARED: dict[str, Estate] = {}


def shared_demo_estate(config: Any) -> Estate:
    """One seeded demo estate per test process, stopped when the session ends.

    Sharing is sound because scans only read (tests/e2e/test_readonly.py proves it).
    """
    if "demo" not in _SHARED:
        cm = seeded_estate()
        _SHARED["demo"] = cm.__enter__()

        def stop() -> None:
            _SHARED.pop("demo", None)
            cm.__exit__(None, None, None)

        config.add_cleanup(stop)
    return _SHARED["demo"]


def fast_retries(monkeypatch: Any, read_timeout: float | None = None) -> None:
    """Shrink botocore's retry waits for a test, keeping the product's mode and attempt count.

    Backoff delays are scaled down 100x and the adaptive token bucket's floor is raised from
    0.5 to 200 requests/s; the number of attempts (session.MAX_ATTEMPTS) is untouched.
    """
    import botocore.config
    import botocore.retries.bucket
    import botocore.retries.standard

    from audit_bedrock.aws import clients as session  # CLIENT_CONFIG, MAX_ATTEMPTS

    original = botocore.retries.standard.ExponentialBackoff.delay_amount

    def quick(self: Any, context: Any) -> float:
        return float(original(self, context)) / 100

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", quick)

    class FastBucket(botocore.retries.bucket.TokenBucket):  # type: ignore[misc]
        def __init__(self, max_rate: float, clock: Any, min_rate: float = 200.0) -> None:
            super().__init__(max_rate, clock, min_rate=min_rate)

    monkeypatch.setattr(botocore.retries.bucket, "TokenBucket", FastBucket)
    if read_timeout is not None:
        monkeypatch.setattr(session, "CLIENT_CONFIG", session.CLIENT_CONFIG.merge(
            botocore.config.Config(read_timeout=read_timeout, connect_timeout=read_timeout)))


@dataclass(frozen=True)
class CliRun:
    """The outcome of one in-process CLI run."""

    rc: int
    stdout: str
    doc: dict[str, Any] | None
    out_dir: Path

    def findings(self, account: str | None = None) -> list[dict[str, Any]]:
        assert self.doc is not None
        return [f for f in self.doc["findings"] if account is None or f["account_id"] == account]


def run_cli_inprocess(monkeypatch: Any, endpoint: str | None, args: list[str], out_dir: Path) -> CliRun:
    """Run audit_bedrock.cli.main(args) in this process with AWS_ENDPOINT_URL=endpoint."""
    import io
    import json

    from audit_bedrock.cli import main

    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([*args, "--output-dir", str(out_dir)])
    path = out_dir / "findings.json"
    doc = json.loads(path.read_text()) if path.exists() else None
    return CliRun(rc, buf.getvalue(), doc, out_dir)


def stable(doc: dict[str, Any]) -> dict[str, Any]:
    """A findings.json document without the fields that legitimately change between runs."""
    import copy

    out = copy.deepcopy(doc)
    for k in ("started_at", "finished_at"):
        out["scan"].pop(k, None)
    return out
