"""Trends over runs (`--history DIR|s3://bucket/prefix`): previous findings.json reduced to one point per run.

A source is a local folder (every findings.json below it) or an S3 prefix laid out as the scheduled job writes
it (`runs/RUN/report/findings.json`; `latest/` and the shards' partial files are left out). Each file is read,
reduced to a RunPoint (open findings by severity, scanned account-regions, how many log, how many deliver) and
dropped, so memory stays bounded by the number of runs (at most `limit`, the most recent). A file that is not a
findings.json is skipped with a warning: history only illustrates, it never stops a scan.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_bedrock.constants import SEVERITIES
from audit_bedrock.errors import UsageError
from audit_bedrock.model import ScanResult

log = logging.getLogger("audit_bedrock")

DEFAULT_LIMIT = 52  # a year of weekly runs
DELIVERY_RULE = "BIL-022"  # "logging on but nothing delivered": a cell with it open is on, not delivering


@dataclass(frozen=True)
class RunPoint:
    """One run, as the trend chart and the terminal summary need it."""

    started_at: str
    finished_at: str
    open: tuple[tuple[str, int], ...]  # (severity, open findings) in SEVERITIES order
    cells: int  # scanned account-regions
    logging_on: int
    delivering: int
    source: str = ""

    def count(self, severity: str) -> int:
        return dict(self.open).get(severity, 0)

    @property
    def total(self) -> int:
        return sum(n for _, n in self.open)

    def share(self, value: int) -> float | None:
        return value / self.cells if self.cells else None

    @property
    def label(self) -> str:
        return (self.finished_at or self.started_at)[:10] or "?"


def _point(started: str, finished: str, findings: Iterable[tuple[str, str, str, str, str | None]],
           coverage: Iterable[tuple[str, str | None, str, bool, bool | None]], source: str) -> RunPoint:
    """findings: (rule_id, severity, status, account, region); coverage: (account, region, status, logging,
    delivering). A cell with logging on delivers unless its coverage says it does not (`delivering` false,
    BIL-022's evidence) or, in a findings.json written before coverage recorded it, BIL-022 is open there."""
    counts = dict.fromkeys(SEVERITIES, 0)
    undelivered: set[tuple[str, str | None]] = set()
    for rule_id, severity, status, account, region in findings:
        if status != "open":
            continue
        if severity in counts:
            counts[severity] += 1
        if rule_id == DELIVERY_RULE:
            undelivered.add((account, region))
    cells = on = delivering = 0
    for account, region, status, logging_on, delivers in coverage:
        if status != "scanned":
            continue
        cells += 1
        if logging_on:
            on += 1
            if delivers is True or (delivers is None and (account, region) not in undelivered):
                delivering += 1
    return RunPoint(started, finished, tuple(counts.items()), cells, on, delivering, source)


def point_from_result(result: ScanResult, source: str = "this run") -> RunPoint:
    """The current run's point."""
    return _point(result.meta.started_at, result.meta.finished_at,
                  ((f.rule_id, f.severity, f.status, f.account_id, f.region) for f in result.findings),
                  ((c.account_id, c.region, c.status, bool(c.logging_enabled), c.delivering)
                   for c in result.coverage), source)


def point_from_document(doc: Any, source: str) -> RunPoint | None:
    """A previous run's point from its findings.json document; None (and a warning) when it is not one."""
    try:
        if not isinstance(doc, dict) or doc.get("schema_version") != 1:
            raise TypeError("not a findings.json with schema_version 1")
        scan = doc.get("scan") or {}
        return _point(str(scan.get("started_at") or ""), str(scan.get("finished_at") or ""),
                      ((str(f["rule_id"]), str(f["severity"]), str(f.get("status", "open")), str(f["account_id"]),
                        f.get("region")) for f in doc.get("findings") or []),
                      ((str(c["account_id"]), c.get("region"), str(c.get("status")), c.get("logging_enabled") is True,
                        c["delivering"] if isinstance(c.get("delivering"), bool) else None)
                       for c in doc.get("coverage") or []), source)
    except (TypeError, KeyError, AttributeError) as exc:
        log.warning("--history: skipping %s: %s", source, exc)
        return None


def _parse(data: bytes, source: str) -> RunPoint | None:
    try:
        return point_from_document(json.loads(data), source)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.warning("--history: skipping %s: not JSON (%s)", source, exc)
        return None


def _wanted(relative: str) -> bool:
    """A run's own findings.json: not the latest/ copy, not a shard's partial file."""
    parts = relative.split("/")
    return parts[-1] == "findings.json" and "shards" not in parts and parts[0] != "latest"


def load_local(folder: str, limit: int = DEFAULT_LIMIT) -> list[RunPoint]:
    root = Path(folder)
    if not root.is_dir():
        raise UsageError("--history: not a folder (or an s3://bucket/prefix)", source=folder)
    files = [p for p in root.rglob("findings.json") if _wanted(p.relative_to(root).as_posix())]
    files.sort(key=lambda p: p.stat().st_mtime)
    points = []
    for p in files[-limit:]:
        try:
            data = p.read_bytes()
        except OSError as exc:
            log.warning("--history: skipping %s: %s", p, exc.strerror or exc)
            continue
        point = _parse(data, str(p))
        if point is not None:
            points.append(point)
    return points


def split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError("--history: expected s3://bucket/prefix", source=url)
    return bucket, prefix


def load_s3(url: str, client: Any, limit: int = DEFAULT_LIMIT) -> list[RunPoint]:
    """The runs under an S3 prefix: listed (ListObjectsV2), the most recent `limit` read one at a time."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3(url)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    found: list[tuple[Any, str]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents") or []:
                key = str(obj.get("Key", ""))
                if _wanted(key[len(prefix):]):
                    found.append((obj.get("LastModified"), key))
    except (ClientError, BotoCoreError) as exc:
        raise UsageError(f"--history: cannot list the runs: {exc}", source=url) from None
    found.sort(key=lambda kv: (str(kv[0]), kv[1]))
    points = []
    for _, key in found[-limit:]:
        source = f"s3://{bucket}/{key}"
        try:
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            log.warning("--history: skipping %s: %s", source, exc)
            continue
        point = _parse(data, source)
        if point is not None:
            points.append(point)
    return points


def load_history(source: str, s3_client: Callable[[], Any] | None = None,
                 limit: int = DEFAULT_LIMIT) -> list[RunPoint]:
    """Previous runs from a folder or an S3 prefix, oldest first (by the time each run finished)."""
    if source.startswith("s3://"):
        if s3_client is None:
            import boto3
            client = boto3.client("s3")
        else:
            client = s3_client()
        points = load_s3(source, client, limit)
    else:
        points = load_local(source, limit)
    points.sort(key=lambda p: (p.finished_at or p.started_at, p.source))
    return points


def series(history: Iterable[RunPoint], current: RunPoint) -> list[RunPoint]:
    """The chart's runs: the previous ones (without a copy of this run) and this one last."""
    before = [p for p in history if (p.started_at, p.finished_at) != (current.started_at, current.finished_at)]
    return [*before, current]
