"""AWS Lambda handlers of the scheduled scan (deploy/scheduled-scan.yaml): shard workers, then merge and notify.

Both call the core API (audit_bedrock.api) in-process. A shard worker runs `--org --shard K/N` and writes its
findings.json under runs/RUN/shards/ in the report bucket; the merge runs `--merge` over the shard files
with `--baseline` the previous run (latest/findings.json) and `--history` the bucket's own runs/ (the trend in the
HTML), writes JSON, HTML, SARIF, OCSF and ASFF under runs/RUN/report/, copies them to latest/, optionally imports
the findings into Security Hub (each account's through its own import role), and publishes to SNS when new
critical or high findings appear.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audit_bedrock import api
from audit_bedrock.constants import EXIT_INCOMPLETE, EXIT_WRITE_FAILED
from audit_bedrock.errors import UsageError

log = logging.getLogger("audit_bedrock")

ENV_BUCKET = "AUDIT_BEDROCK_BUCKET"
ENV_ROLE_NAME = "AUDIT_BEDROCK_ROLE_NAME"
ENV_EXTERNAL_ID = "AUDIT_BEDROCK_EXTERNAL_ID"
ENV_REGIONS = "AUDIT_BEDROCK_REGIONS"
ENV_TOPIC_ARN = "AUDIT_BEDROCK_TOPIC_ARN"
ENV_SECURITY_HUB_IMPORT = "AUDIT_BEDROCK_SECURITY_HUB_IMPORT"  # "true": import the findings into Security Hub
ENV_SECURITY_HUB_ROLE = "AUDIT_BEDROCK_SECURITY_HUB_ROLE_NAME"  # the import role in each member account
SHARD_ENV = (ENV_BUCKET, ENV_ROLE_NAME, ENV_EXTERNAL_ID, ENV_REGIONS)  # what each function is configured with
MERGE_ENV = (ENV_BUCKET, ENV_TOPIC_ARN, ENV_SECURITY_HUB_IMPORT, ENV_SECURITY_HUB_ROLE, ENV_EXTERNAL_ID)
REPORT_FORMATS = ("json", "html", "sarif", "ocsf", "asff")
REPORT_FILES = ("findings.json", "report.html", "findings.sarif", "findings.ocsf.json", "findings.asff.json")
NOTIFY_SEVERITIES = ("critical", "high")
MIN_BOTOCORE = (1, 42, 2)  # the audio data-type flag; an older botocore drops it silently
MAX_LISTED = 50  # findings listed in one notification
# A shard worker's scan stops this long before the function's own timeout: the accounts in flight get their grace
# (5 s), then findings.json is written to S3, so Lambda never kills a scan that has results.
DEADLINE_MARGIN_SECONDS = 30.0
_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


class HandlerError(RuntimeError):
    """The event is malformed or the scan could not run (exit 2): the task fails and Step Functions shows why."""


@dataclass(frozen=True)
class Layout:
    """Where each run's files live in the report bucket."""

    bucket: str

    def shard_dir(self, run_id: str, shard: int, count: int) -> str:
        return f"runs/{run_id}/shards/{shard:04d}-of-{count:04d}"

    def shards_root(self, run_id: str) -> str:
        return f"runs/{run_id}/shards/"

    def report_dir(self, run_id: str) -> str:
        return f"runs/{run_id}/report"

    def latest_dir(self) -> str:
        return "latest"

    def history_root(self) -> str:
        return "runs/"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def layout_from_env() -> Layout:
    bucket = os.environ.get(ENV_BUCKET, "")
    if not bucket:
        raise HandlerError(f"{ENV_BUCKET} is not set")
    return Layout(bucket)


def check_sdk() -> None:
    """Refuse to scan with a botocore that silently drops fields the rules read."""
    import botocore

    version = tuple(int(p) for p in re.findall(r"\d+", botocore.__version__)[:3])
    if version < MIN_BOTOCORE:
        want = ".".join(map(str, MIN_BOTOCORE))
        raise HandlerError(f"botocore {botocore.__version__} is older than {want}: rebuild the zip with "
                           "`make lambda-package LAMBDA_ARGS=--include-sdk`")


def _run_id(event: dict[str, Any]) -> str:
    run_id = str(event.get("run_id") or "")
    if not _RUN_ID.match(run_id):
        raise HandlerError(f"bad run_id {run_id!r}: expected 1-80 of A-Z a-z 0-9 . _ -")
    return run_id


def _positive(event: dict[str, Any], key: str) -> int:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() or int(value) < 1:
        raise HandlerError(f"bad {key} {value!r}: expected a positive integer")
    return int(value)


def scan_options() -> api.RunOptions:
    """Options from the function's environment: the audit role, its ExternalId, the regions; --fail-on none."""
    def env(name: str) -> str | None:
        return os.environ.get(name, "").strip() or None

    regions = env(ENV_REGIONS)
    return api.RunOptions(scope=api.ScopeOptions(regions=api.parse_regions(regions) if regions else None),
                          scan=api.ScanOptions(role_name=env(ENV_ROLE_NAME), external_id=env(ENV_EXTERNAL_ID),
                                               fail_on="none"))


def security_hub_import() -> tuple[bool, str | None, str | None]:
    """(import?, import role name, ExternalId) from the stack's SecurityHubImport settings."""
    def env(name: str) -> str | None:
        return os.environ.get(name, "").strip() or None

    return (env(ENV_SECURITY_HUB_IMPORT) or "").lower() == "true", env(ENV_SECURITY_HUB_ROLE), env(ENV_EXTERNAL_ID)


def run_api(options: api.RunOptions) -> int:
    """Run audit-bedrock in this process; a usage or config error (nothing scanned) becomes a HandlerError."""
    log.info("audit-bedrock %s", options)
    try:
        return api.run(options)
    except UsageError as exc:
        raise HandlerError(f"audit-bedrock usage or config error: {exc}") from None


def scan_timeout(context: Any) -> float | None:
    """Seconds the scan may take: the invocation's remaining time less DEADLINE_MARGIN_SECONDS (at least 1 s);
    None without a Lambda context (a local call)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(1.0, float(remaining()) / 1000 - DEADLINE_MARGIN_SECONDS)


def shard_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Scan shard K of N of the organization; event {"run_id", "shard": K, "shard_count": N}.

    The scan stops before the function times out (scan_timeout) and writes what it has, marked incomplete."""
    check_sdk()
    run_id = _run_id(event)
    shard, count = _positive(event, "shard"), _positive(event, "shard_count")
    if shard > count:
        raise HandlerError(f"shard {shard} is beyond shard_count {count}")
    lay = layout_from_env()
    out = lay.shard_dir(run_id, shard, count)
    base = scan_options()
    code = run_api(replace(base, scope=replace(base.scope, org=True, shard=(shard, count)),
                           scan=replace(base.scan, timeout=scan_timeout(context)),
                           output=api.OutputOptions(formats=("json",), output_dir=lay.url(out))))
    return {"run_id": run_id, "shard": shard, "shard_count": count, "key": f"{out}/findings.json",
            "exit_code": code}


def _shard_keys(event: dict[str, Any], lay: Layout, run_id: str) -> list[str]:
    """The shard files of this run, checked to be exactly shards 1..N of N under this run's prefix."""
    items = event.get("shards")
    if not isinstance(items, list) or not items:
        raise HandlerError("the event has no 'shards' list")
    by_number: dict[int, str] = {}
    counts = set()
    for item in items:
        if not isinstance(item, dict):
            raise HandlerError(f"bad shard result {item!r}")
        n, counts_n = _positive(item, "shard"), _positive(item, "shard_count")
        key = str(item.get("key") or "")
        if not key.startswith(lay.shards_root(run_id)):
            raise HandlerError(f"shard key {key!r} is not under {lay.shards_root(run_id)}")
        by_number[n] = key
        counts.add(counts_n)
    if len(counts) != 1 or sorted(by_number) != list(range(1, counts.pop() + 1)) or len(items) != len(by_number):
        raise HandlerError(f"incomplete or inconsistent shard results: {sorted(by_number)}")
    return [by_number[n] for n in sorted(by_number)]


def _baseline(s3: Any, lay: Layout, folder: Path) -> Path | None:
    """Download the previous run's findings.json, or None on the first run."""
    key = f"{lay.latest_dir()}/findings.json"
    listed = s3.list_objects_v2(Bucket=lay.bucket, Prefix=key, MaxKeys=1)
    if not any(o.get("Key") == key for o in listed.get("Contents") or []):
        return None
    path = folder / "baseline.json"
    s3.download_file(lay.bucket, key, str(path))
    return path


def new_findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Open findings that are new since the baseline and critical or high."""
    return [f for f in doc.get("findings") or []
            if f.get("status") == "open" and f.get("baseline") == "new" and f.get("severity") in NOTIFY_SEVERITIES]


def notification(run_id: str, new: list[dict[str, Any]], lay: Layout, report: str, first_run: bool,
                 incomplete: bool) -> tuple[str, str]:
    """(subject, message) of the SNS notification."""
    subject = f"audit-bedrock: {len(new)} new critical/high finding(s)"
    since = "(first run: no previous run to compare with)" if first_run else "since the previous run"
    lines = [f"audit-bedrock run {run_id} found {len(new)} new critical or high finding(s) {since}.", ""]
    if incomplete:
        lines += ["The scan was incomplete: some accounts or regions could not be read (SCAN-* findings).", ""]
    lines += [f"Report:   {lay.url(report + '/report.html')}", f"Findings: {lay.url(report + '/findings.json')}",
              f"SARIF:    {lay.url(report + '/findings.sarif')}", ""]
    for f in new[:MAX_LISTED]:
        name = f" ({f['account_name']})" if f.get("account_name") else ""
        lines.append(f"{f['severity'].upper():<8} {f['rule_id']:<8} {f['account_id']}{name} "
                     f"{f.get('region') or 'account'}: {f.get('title', '')}")
    if len(new) > MAX_LISTED:
        lines.append(f"... and {len(new) - MAX_LISTED} more")
    return subject, "\n".join(lines) + "\n"


def merge_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Merge the shard files of one run, compare with the previous run, write the reports, notify.

    Event: {"run_id", "shards": [shard_handler results]}.
    """
    import boto3

    check_sdk()
    run_id = _run_id(event)
    lay = layout_from_env()
    keys = _shard_keys(event, lay, run_id)
    s3 = boto3.client("s3")
    report = lay.report_dir(run_id)
    with tempfile.TemporaryDirectory(prefix="audit-bedrock-") as tmp:
        folder = Path(tmp)
        files = []
        for i, key in enumerate(keys, 1):
            path = folder / f"shard-{i:04d}.json"
            s3.download_file(lay.bucket, key, str(path))
            files.append(str(path))
        baseline = _baseline(s3, lay, folder)
        importing, import_role, external_id = security_hub_import()
        code = run_api(api.RunOptions(
            scan=api.ScanOptions(fail_on="none", external_id=external_id), merge=tuple(files),
            output=api.OutputOptions(formats=REPORT_FORMATS, output_dir=lay.url(report),
                                     baseline=str(baseline) if baseline is not None else None,
                                     history=lay.url(lay.history_root()), security_hub_import=importing,
                                     security_hub_role_name=import_role)))
    if code == EXIT_WRITE_FAILED:  # S3 has no multi-object transaction: a partial set must not become latest/
        raise HandlerError(f"run {run_id}: not every report could be written under {lay.url(report + '/')}; "
                           f"{lay.latest_dir()}/ still holds the previous run")
    body = s3.get_object(Bucket=lay.bucket, Key=f"{report}/findings.json")["Body"].read()
    doc = json.loads(body)
    for name in REPORT_FILES:  # this run becomes the next run's baseline
        s3.copy_object(Bucket=lay.bucket, Key=f"{lay.latest_dir()}/{name}",
                       CopySource={"Bucket": lay.bucket, "Key": f"{report}/{name}"})
    new = new_findings(doc)
    topic = os.environ.get(ENV_TOPIC_ARN, "")
    notified = False
    if new and topic:
        subject, message = notification(run_id, new, lay, report, baseline is None, code == EXIT_INCOMPLETE)
        boto3.client("sns").publish(
            TopicArn=topic, Subject=subject[:100], Message=message,
            MessageAttributes={"new_critical_high": {"DataType": "Number", "StringValue": str(len(new))}})
        notified = True
    log.info("run %s: %d finding(s), %d new critical/high, notified=%s", run_id, len(doc.get("findings") or []),
             len(new), notified)
    return {"run_id": run_id, "report": lay.url(report + "/"), "exit_code": code,
            "findings": len(doc.get("findings") or []), "new_critical_high": len(new), "notified": notified,
            "first_run": baseline is None}
