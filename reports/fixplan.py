"""The fix plan (`--format fix`): fix-plan.json and fix-plan.sh, the AWS calls that fix the findings, for review.

audit-bedrock never runs them. A person reviews the plan and applies it: each step of fix-plan.json is one API
call, `boto3.client(service, region_name=region).<snake_case(operation)>(**parameters)` made with the
credentials of `account_id`; fix-plan.sh makes the same calls with the AWS CLI (`--cli-input-json`).

Every step is safe to review and to re-run:
- it merges with what exists: a bucket policy, key policy or trust policy keeps every statement it has and gains
  the Bedrock statement (or the confused-deputy conditions); a lifecycle configuration keeps its rules;
- it never deletes anything (no Delete* call, no statement or grant removed);
- it is idempotent: each step writes a whole value computed from the scan (our statements and rules carry fixed
  Sids and IDs, so a re-run writes the same document). The one create (`CreateLogGroup`) names in
  `ok_if_error` the error that means "already done".
Each merged policy is checked with the scanner's own policy analyzer before it is proposed: a step that could
not fix its finding (an explicit Deny, a permissions boundary) is not proposed, and the finding gets a note.
Findings that need a choice (which bucket? which key?) get a note in `manual` and no step: nothing is guessed.
Suppressed findings are accepted risks and are left out.

Memory: the plan is built while the scan runs. `FixPlanner.add` reads one account's facts document as it
arrives (the same dicts the rules read) and keeps only the edits it will propose (the documents it rewrites);
the facts are then let go, so the renderers never need them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from audit_bedrock.analyzer import PolicyError, confused_deputy_guarded, trusts_service
from audit_bedrock.derive import BEDROCK, can_write_log_group, derive_bucket, derive_key, log_key_prefix
from audit_bedrock.facts import is_gap
from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.json_report import json_chunks

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

SCHEMA_VERSION = 1
SID = "AuditBedrockLogDelivery"  # the Sid of every statement the plan adds
INLINE_POLICY = "AuditBedrockLogDelivery"  # the inline policy the plan puts on a delivery role
LIFECYCLE_ID = "audit-bedrock-log-tiering"
TRANSITION = {"Days": 90, "StorageClass": "GLACIER_IR"}
# CloudWatch Logs PutRetentionPolicy accepts only these values (API reference, PutRetentionPolicy).
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
FLAGS = {"text": "textDataDeliveryEnabled", "image": "imageDataDeliveryEnabled",
         "embedding": "embeddingDataDeliveryEnabled", "video": "videoDataDeliveryEnabled",
         "audio": "audioDataDeliveryEnabled"}
BINARY_TYPES = ("image", "video", "audio")
CLI_SERVICE = {"s3": "s3api"}  # botocore service name -> AWS CLI command, where they differ
COVERED = ("BIL-003", "BIL-005", "BIL-007", "BIL-008", "BIL-009", "BIL-012", "BIL-013", "BIL-014", "BIL-015",
           "BIL-018", "BIL-019")
# Why a finding of these rules gets no step: the fix needs a decision only its owner can make.
MANUAL_NOTES: dict[str, str] = {
    "BIL-001": "Choose a destination (an S3 bucket and/or a CloudWatch log group with a delivery role) and turn "
               "logging on in this region; which destination is a decision, so no step is proposed.",
    "BIL-002": "Bedrock is in use and logging is off: choose a destination (an S3 bucket and/or a CloudWatch log "
               "group with a delivery role) and turn logging on; which destination is a decision.",
    "BIL-004": "Choose an S3 bucket for large and binary payloads (largeDataDeliveryS3Config) or add an S3 "
               "destination; which bucket is a decision, so no step is proposed.",
    "BIL-006": "The delivery role does not exist: create it (trust bedrock.amazonaws.com with aws:SourceAccount "
               "and aws:SourceArn conditions, allow logs:CreateLogStream and logs:PutLogEvents on the log group's "
               "stream) or point the configuration at an existing role; which is a decision.",
    "BIL-010": "An orphaned role is removed by deleting it, and this plan never deletes anything: review it and "
               "delete it yourself if nothing uses it.",
    "BIL-011": "Which bucket? Create the bucket (same account and region; the name may now belong to someone "
               "else) or point the configuration at an existing bucket; no step is guessed.",
    "BIL-016": "Choose a customer managed KMS key for the log group (logs:AssociateKmsKey) or the bucket "
               "(default encryption aws:kms); which key, and its key policy, are decisions.",
    "BIL-017": "The destination is outside approved_destinations: re-point the configuration at an approved "
               "destination, or approve this one in the config; which is a decision.",
    "SCAN-001": "Deploy or repair the audit role in this account (deploy/audit-role.yaml), then scan again.",
    "SCAN-002": "The region could not be read: scan again; if it persists, check the audit role's Bedrock "
                "permissions and any SCP for this region.",
    "SCAN-003": "A fact could not be read: grant the audit role the permission named in the finding and scan again.",
}


@dataclass(frozen=True, slots=True)
class Step:
    """One API call of the plan."""

    account_id: str
    region: str | None
    service: str
    operation: str
    parameters: dict[str, Any]
    fixes: tuple[str, ...]
    note: str
    ok_if_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"account_id": self.account_id, "region": self.region, "service": self.service,
               "operation": self.operation, "parameters": self.parameters, "fixes": list(self.fixes),
               "note": self.note}
        if self.ok_if_error:
            out["ok_if_error"] = self.ok_if_error
        return out


@dataclass(frozen=True, slots=True)
class Manual:
    """A finding the plan does not fix, and why."""

    account_id: str
    region: str | None
    rule_id: str
    fixes: tuple[str, ...]
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "region": self.region, "rule_id": self.rule_id,
                "fixes": list(self.fixes), "note": self.note}


@dataclass(frozen=True)
class FixPlan:
    """The ordered steps and the notes for what needs a person."""

    steps: tuple[Step, ...] = ()
    manual: tuple[Manual, ...] = ()

    def by_finding(self) -> dict[str, list[Step | Manual]]:
        """Each finding id's steps (in plan order) and notes."""
        out: dict[str, list[Step | Manual]] = {}
        items: list[Step | Manual] = [*self.steps, *self.manual]
        for item in items:
            for fid in item.fixes:
                out.setdefault(fid, []).append(item)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "steps": [s.to_json() for s in self.steps],
                "manual": [m.to_json() for m in self.manual]}


# ---------------------------------------------------------------------------------------------- edits

@dataclass
class _Edit:
    """One resource's pending change: what to write, and the findings it fixes."""

    rank: int
    account_id: str
    region: str | None
    key: str
    fixes: set[str] = field(default_factory=set)
    data: dict[str, Any] = field(default_factory=dict)


# The order in which steps apply: keys before the buckets that use them, destinations before the logging
# configuration (Bedrock checks its destinations when the configuration is saved), a bucket policy before the
# public access block (BlockPublicPolicy would refuse a policy that still has a public statement).
RANK = {"cancel_key_deletion": 0, "enable_key": 1, "key_policy": 2, "trust": 3, "role_policy": 4,
        "create_log_group": 5, "retention": 6, "ownership": 7, "bucket_policy": 8, "public_access_block": 9,
        "lifecycle": 10, "logging": 11}


def _doc(policy: Any) -> dict[str, Any] | None:
    """A policy document as a dict (a JSON string is parsed); None when absent; PolicyError when unusable."""
    if policy is None:
        return None
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"not JSON: {exc.msg}") from None
    if not isinstance(policy, dict) or is_gap(policy):
        raise PolicyError("not a policy document")
    return copy.deepcopy(policy)


def _statements(doc: dict[str, Any] | None) -> list[Any]:
    if doc is None:
        return []
    stmts = doc.get("Statement")
    return list(stmts) if isinstance(stmts, list) else [stmts] if stmts else []


def _with_statement(doc: dict[str, Any] | None, statement: dict[str, Any]) -> dict[str, Any]:
    """`doc` with `statement` added, or replacing our own earlier statement of the same Sid; nothing else moves."""
    out: dict[str, Any] = doc if doc is not None else {"Version": "2012-10-17"}
    kept = [s for s in _statements(out) if not (isinstance(s, dict) and s.get("Sid") == statement.get("Sid"))]
    out.setdefault("Version", "2012-10-17")
    out["Statement"] = [*kept, statement]
    return out


def _source_condition(accounts_regions: Iterable[tuple[str, str]]) -> dict[str, Any]:
    pairs = sorted(set(accounts_regions))
    accounts = sorted({a for a, _ in pairs})
    arns = [f"arn:aws:bedrock:{r}:{a}:*" for a, r in pairs]
    return {"StringEquals": {"aws:SourceAccount": accounts[0] if len(accounts) == 1 else accounts},
            "ArnLike": {"aws:SourceArn": arns[0] if len(arns) == 1 else arns}}


def _bedrock_statement(action: str, resource: Any, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Sid": SID, "Effect": "Allow", "Principal": {"Service": BEDROCK}, "Action": action}
    if resource is not None:
        stmt["Resource"] = resource
    stmt["Condition"] = _source_condition(pairs)
    return stmt


def _services(principal: Any) -> list[str]:
    if not isinstance(principal, dict):
        return []
    svc = principal.get("Service")
    return [svc] if isinstance(svc, str) else [s for s in svc or [] if isinstance(s, str)]


def guard_trust(doc: dict[str, Any], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Add the confused-deputy conditions to every Allow that lets Bedrock assume the role without them.

    A statement that also trusts other principals is split: it keeps the others, and Bedrock moves to our
    conditioned statement, so nobody else loses access and nothing is removed from what Bedrock may do here.
    """
    out = copy.deepcopy(doc)
    stmts = _statements(out)
    new: list[Any] = []
    needs_ours = False
    for s in stmts:
        if not (isinstance(s, dict) and s.get("Effect") == "Allow" and BEDROCK in _services(s.get("Principal"))
                and trusts_service({"Statement": [s]}, BEDROCK) and not confused_deputy_guarded({"Statement": [s]},
                                                                                                 BEDROCK)):
            new.append(s)
            continue
        others = {k: v for k, v in s["Principal"].items() if k != "Service"}
        rest = [x for x in _services(s["Principal"]) if x != BEDROCK]
        if rest:
            others["Service"] = rest[0] if len(rest) == 1 else rest
        if others:
            new.append({**s, "Principal": others})
            needs_ours = True
        elif s.get("Sid") == SID:
            needs_ours = True
        else:
            cond = copy.deepcopy(s.get("Condition") or {})
            for op, block in _source_condition(pairs).items():
                cond.setdefault(op, {}).update(block)
            new.append({**s, "Condition": cond})
    out["Statement"] = new
    if needs_ours:
        out = _with_statement(out, _bedrock_statement("sts:AssumeRole", None, pairs))
    return out


def retention_for(min_days: int) -> int:
    """The smallest retention CloudWatch Logs accepts that is at least `min_days`."""
    return next((d for d in RETENTION_DAYS if d >= min_days), RETENTION_DAYS[-1])


def _lifecycle_rule(prefix: str) -> dict[str, Any]:
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:8]
    return {"ID": f"{LIFECYCLE_ID}-{digest}", "Filter": {"Prefix": prefix}, "Status": "Enabled",
            "Transitions": [dict(TRANSITION)]}


def _canonical(value: Any) -> Any:
    """`value` with every dict's keys sorted: a plan from saved facts (written sorted) is byte-identical."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _key_id(arn: str) -> str:
    """The key id of a key ARN: each KMS step runs in the key's own account and region, where it suffices."""
    return arn.rsplit("/", 1)[-1] if arn.startswith("arn:") and ":key/" in arn else arn


def _default_acl(acl: Any) -> bool:
    """True when the bucket ACL is the private default (one canonical-user grant at most): safe to disable."""
    if not isinstance(acl, list):
        return acl is None
    owners = {g.get("id") for g in acl if g.get("type") == "CanonicalUser"}
    return all(g.get("type") == "CanonicalUser" for g in acl) and len(owners) <= 1


class FixPlanner:
    """Collects, account by account, the edits that fix each finding; `plan()` orders them into steps."""

    def __init__(self, min_retention_days: int = 90) -> None:
        self.min_retention_days = min_retention_days
        self.edits: dict[tuple[str, str], _Edit] = {}
        self.manual: list[Manual] = []

    # -- bookkeeping
    def _edit(self, kind: str, account: str, region: str | None, resource: str) -> _Edit:
        key = (kind, f"{account}|{region or ''}|{resource}")
        if key not in self.edits:
            self.edits[key] = _Edit(RANK[kind], account, region, resource)
        return self.edits[key]

    def _note(self, f: Finding, note: str) -> None:
        self.manual.append(Manual(f.account_id, f.region, f.rule_id, (f.id,), note))

    # -- entry point
    def add(self, doc: dict[str, Any], findings: Iterable[Finding]) -> None:
        """Plan the fixes of one account's open findings from its facts document (not kept)."""
        regions = {r.get("region"): r for r in doc.get("regions") or [] if isinstance(r, dict)}
        for f in findings:
            if f.status != "open":
                continue
            rdoc = regions.get(f.region) if f.region else None
            handler = getattr(self, "_" + f.rule_id.replace("-", "_").lower(), None)
            if handler is None or (f.region and rdoc is None):
                note = MANUAL_NOTES.get(f.rule_id) or ("No automatic fix: follow the remediation." if handler is None
                                                       else "The facts of this region were not available.")
                self._note(f, note)
                continue
            try:
                handler(f, doc, rdoc)
            except PolicyError as exc:
                self._note(f, f"The current policy could not be read as a policy document ({exc}): fix it by "
                              "hand, then scan again.")

    # -- per rule
    def _bil_003(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        logging_fact = rdoc.get("logging") or {}
        raw = logging_fact.get("raw")
        missing = [t for t in f.properties.get("missing_data_types") or [] if t in FLAGS]
        if not isinstance(raw, dict) or not missing:
            self._note(f, "The logging configuration was not available: turn on the missing data types by hand.")
            return
        has_s3 = bool(logging_fact.get("s3")) or bool(logging_fact.get("large_data_s3"))
        if not has_s3 and any(t in BINARY_TYPES for t in missing):
            self._note(f, "Image, video and audio payloads reach only S3: with CloudWatch as the only destination "
                          "they would be dropped. Choose a large-data bucket (largeDataDeliveryS3Config) first; "
                          f"then turn on {', '.join(missing)}.")
            return
        e = self._edit("logging", f.account_id, f.region, "logging")
        e.data.setdefault("config", copy.deepcopy(raw))
        e.data.setdefault("types", set()).update(missing)
        e.fixes.add(f.id)

    def _bil_005(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        name = (rdoc.get("log_group") or {}).get("name")
        if not name:
            self._note(f, "The log group name was not available.")
            return
        e = self._edit("create_log_group", f.account_id, f.region, name)
        e.fixes.add(f.id)
        r = self._edit("retention", f.account_id, f.region, name)
        r.data["days"] = max(r.data.get("days", 0), retention_for(self.min_retention_days))
        r.data["created"] = True
        r.fixes.add(f.id)

    def _role(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        arn = (rdoc.get("delivery_role") or {}).get("arn") or ""
        iam = doc.get("iam")
        record = (iam.get("roles") or {}).get(arn) if isinstance(iam, dict) and not is_gap(iam) else None
        if not arn or not isinstance(record, dict) or record.get("exists") is not True:
            self._note(f, "The delivery role's record was not available.")
            return None
        return arn, record

    def _role_regions(self, doc: dict[str, Any], arn: str) -> list[tuple[str, str]]:
        """(account, region) of every scanned region whose configuration names this role."""
        out = []
        for r in doc.get("regions") or []:
            cw = ((r.get("logging") or {}).get("cloudwatch") or {}) if isinstance(r, dict) else {}
            if cw.get("role_arn") == arn:
                out.append((str(r.get("account_id") or doc["account_id"]), str(r["region"])))
        return out

    def _trust(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        got = self._role(f, doc, rdoc)
        if got is None:
            return
        arn, record = got
        e = self._edit("trust", f.account_id, None, arn)
        if "base" not in e.data:
            e.data["base"] = _doc(record.get("trust_policy")) or {"Version": "2012-10-17", "Statement": []}
            e.data["name"] = record.get("name") or arn.rsplit("/", 1)[-1]
        e.data.setdefault("pairs", set()).update(self._role_regions(doc, arn) or [(f.account_id, f.region or "*")])
        e.data.setdefault("rules", set()).add(f.rule_id)
        e.fixes.add(f.id)

    _bil_007 = _trust
    _bil_008 = _trust

    def _bil_009(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        got = self._role(f, doc, rdoc)
        if got is None:
            return
        arn, record = got
        role = rdoc.get("delivery_role") or {}
        stream = role.get("stream_arn")
        if not stream:
            self._note(f, "The log stream ARN was not available.")
            return
        e = self._edit("role_policy", f.account_id, None, arn)
        if "record" not in e.data:
            e.data["record"] = copy.deepcopy(record)
        e.data.setdefault("streams", {})[stream] = (f.account_id, f.region, (rdoc.get("logging") or {})
                                                    .get("cloudwatch", {}).get("log_group"), f.id)
        e.fixes.add(f.id)

    def _bucket(self, f: Finding, rdoc: dict[str, Any]) -> dict[str, Any] | None:
        bucket: dict[str, Any] | None = next(
            (b for b in rdoc.get("buckets") or [] if isinstance(b, dict) and b.get("arn") == f.resource), None)
        if bucket is None or bucket.get("exists") is not True:
            self._note(f, "The bucket's facts were not available.")
            return None
        return bucket

    def _bucket_edit(self, kind: str, f: Finding, bucket: dict[str, Any]) -> _Edit:
        e = self._edit(kind, f.account_id, f.region, bucket["name"])
        e.data.setdefault("bucket", copy.deepcopy(bucket))
        e.fixes.add(f.id)
        return e

    def _bil_012(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        bucket = self._bucket(f, rdoc)
        if bucket is None:
            return
        if bucket.get("explicit_deny"):
            self._note(f, "An explicit Deny in the bucket policy blocks Bedrock's writes; this plan never removes a "
                          "statement: narrow or remove that Deny yourself, then scan again.")
            return
        _doc(bucket.get("policy"))  # refuses an unreadable policy before any edit is recorded
        self._bucket_edit("bucket_policy", f, bucket).data["region"] = f.region

    def _bil_013(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        bucket = self._bucket(f, rdoc)
        if bucket is not None:
            self._bucket_edit("public_access_block", f, bucket).data["statements"] = list(
                bucket.get("public_policy_statements") or [])

    def _bil_014(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        name = (rdoc.get("log_group") or {}).get("name")
        if not name:
            self._note(f, "The log group name was not available.")
            return
        wanted = int(f.properties.get("min_retention_days") or self.min_retention_days)
        e = self._edit("retention", f.account_id, f.region, name)
        e.data["days"] = max(e.data.get("days", 0), retention_for(wanted))
        e.data["before"] = f.properties.get("retention_days")
        e.fixes.add(f.id)

    def _bil_015(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        bucket = self._bucket(f, rdoc)
        if bucket is None:
            return
        if is_gap(bucket.get("lifecycle_rules")):
            self._note(f, "The bucket's lifecycle rules could not be read; they would be overwritten.")
            return
        self._bucket_edit("lifecycle", f, bucket)

    def _bil_018(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        bucket = self._bucket(f, rdoc)
        if bucket is None:
            return
        if not _default_acl(bucket.get("acl")):
            self._note(f, "The bucket ACL grants access beyond the owner; S3 refuses BucketOwnerEnforced until those "
                          "grants are moved into the bucket policy and the ACL is reset, which removes them: a "
                          "decision this plan leaves to you.")
            return
        self._bucket_edit("ownership", f, bucket)

    def _bil_019(self, f: Finding, doc: dict[str, Any], rdoc: dict[str, Any]) -> None:
        key = next((k for k in rdoc.get("kms_keys") or [] if k.get("arn") == f.resource and not k.get("unknown")),
                   None)
        if key is None or key.get("exists") is not True:
            self._note(f, "The key does not exist or its facts were not available: re-point the destination at a "
                          "usable customer managed key, or use SSE-S3.")
            return
        arn = str(key.get("arn"))
        owner = arn.split(":")[4] if arn.count(":") >= 5 else f.account_id
        key_region = arn.split(":")[3] if arn.count(":") >= 5 else f.region
        planned = False
        if key.get("pending_deletion") is True:
            self._edit("cancel_key_deletion", owner, key_region, arn).fixes.add(f.id)
            self._edit("enable_key", owner, key_region, arn).fixes.add(f.id)
            planned = True
        elif key.get("enabled") is False:
            if key.get("state") != "Disabled":
                self._note(f, f"The key is in state {key.get('state')}; only a Disabled key can be enabled.")
                return
            self._edit("enable_key", owner, key_region, arn).fixes.add(f.id)
            planned = True
        if key.get("bedrock_can_generate_data_key") is False:
            if key.get("manager") == "AWS":
                self._note(f, "The AWS managed key aws/s3 can never admit Bedrock: switch the bucket's default "
                              "encryption to SSE-S3 or to a customer managed key; which is a decision.")
                return
            e = self._edit("key_policy", owner, key_region, arn)
            if "base" not in e.data:
                e.data["base"] = _doc(key.get("policy"))
                e.data["key"] = copy.deepcopy(key)
            e.data.setdefault("pairs", set()).add((f.account_id, str(f.region)))
            e.fixes.add(f.id)
            planned = True
        if not planned:
            self._note(f, "No change this plan can make was found for this key.")

    # -- steps
    def plan(self) -> FixPlan:
        """The steps in the order to apply them, and the notes."""
        steps: list[tuple[tuple[Any, ...], Step]] = []
        manual = list(self.manual)
        for (kind, _), e in self.edits.items():
            made = getattr(self, "_step_" + kind)(e)
            for i, step in enumerate(made if isinstance(made, list) else [made]):
                if isinstance(step, Manual):
                    manual.append(step)
                elif step is not None:
                    step = replace(step, parameters=_canonical(step.parameters))
                    steps.append(((e.account_id, e.rank, e.region or "", e.key, i), step))
        steps.sort(key=lambda kv: kv[0])
        manual.sort(key=lambda m: (m.account_id, m.region or "", m.rule_id, m.fixes))
        return FixPlan(tuple(s for _, s in steps), tuple(manual))

    def _fixes(self, e: _Edit) -> tuple[str, ...]:
        return tuple(sorted(e.fixes))

    def _refused(self, e: _Edit, rule: str, note: str) -> Manual:
        return Manual(e.account_id, e.region, rule, self._fixes(e), note)

    def _step_logging(self, e: _Edit) -> Step:
        config = e.data["config"]
        types = sorted(e.data["types"], key=list(FLAGS).index)
        for t in types:
            config[FLAGS[t]] = True
        return Step(e.account_id, e.region, "bedrock", "PutModelInvocationLoggingConfiguration",
                    {"loggingConfig": config}, self._fixes(e),
                    f"Re-saves this region's logging configuration unchanged except for turning on {', '.join(types)}"
                    " delivery. Applied last in the region: Bedrock checks the destinations when it is saved.")

    def _step_create_log_group(self, e: _Edit) -> Step:
        return Step(e.account_id, e.region, "logs", "CreateLogGroup", {"logGroupName": e.key}, self._fixes(e),
                    f"Creates the log group {e.key} that the logging configuration names (Bedrock does not create "
                    "it). Consider a KMS key (BIL-016) too. Re-running it answers ResourceAlreadyExistsException, "
                    "which means it is done.", ok_if_error="ResourceAlreadyExistsException")

    def _step_retention(self, e: _Edit) -> Step:
        days = int(e.data["days"])
        if e.data.get("created"):
            why = "Gives the new log group a retention period, so it does not keep events forever (BIL-014)"
        elif e.data.get("before") is None:
            why = "Gives the log group a retention period instead of never expiring"
        else:
            why = f"Raises the retention from {e.data['before']} days"
        return Step(e.account_id, e.region, "logs", "PutRetentionPolicy",
                    {"logGroupName": e.key, "retentionInDays": days}, self._fixes(e),
                    f"{why}: {days} days (min_retention_days, rounded up to a value CloudWatch Logs accepts). "
                    "Events older than that are then expired by CloudWatch Logs: choose a longer period if your "
                    "retention policy asks for one.")

    def _step_trust(self, e: _Edit) -> Step | Manual:
        pairs = sorted(e.data["pairs"])
        doc = e.data["base"]
        if "BIL-007" in e.data["rules"] and not trusts_service(doc, BEDROCK):
            doc = _with_statement(doc, _bedrock_statement("sts:AssumeRole", None, pairs))
        doc = guard_trust(doc, pairs)
        if not trusts_service(doc, BEDROCK) or not confused_deputy_guarded(doc, BEDROCK):
            return self._refused(e, "BIL-007", "Even with the Bedrock statement the trust policy would not let "
                                               "Bedrock assume the role (an explicit Deny?); this plan removes "
                                               "nothing: fix the trust policy by hand.")
        return Step(e.account_id, None, "iam", "UpdateAssumeRolePolicy",
                    {"RoleName": e.data["name"], "PolicyDocument": json.dumps(doc, sort_keys=True)}, self._fixes(e),
                    f"Rewrites the trust policy of role {e.data['name']} keeping every statement: Bedrock may assume "
                    "it only with aws:SourceAccount and aws:SourceArn for "
                    f"{', '.join(f'{a}/{r}' for a, r in pairs)} (confused-deputy conditions).")

    def _step_role_policy(self, e: _Edit) -> Step | Manual:
        record = e.data["record"]
        streams = e.data["streams"]
        existing = next((p for p in record.get("inline_policies") or []
                         if isinstance(p, dict) and p.get("name") == INLINE_POLICY), None)
        base = _doc(existing.get("document")) if existing else None
        doc = _with_statement(base, {"Sid": SID, "Effect": "Allow",
                                     "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                     "Resource": sorted(streams) if len(streams) > 1 else next(iter(streams))})
        trial = copy.deepcopy(record)
        others = [p for p in trial.get("inline_policies") or [] if p.get("name") != INLINE_POLICY]
        trial["inline_policies"] = [*others, {"name": INLINE_POLICY, "document": doc}]
        for account, region, group, _fid in streams.values():
            if not group or can_write_log_group(trial, account, region, group).get("can_write_log_group") is not True:
                return self._refused(e, "BIL-009", "An explicit Deny or the role's permissions boundary would still "
                                                   "block logs:CreateLogStream / logs:PutLogEvents; this plan "
                                                   "removes nothing: change them by hand.")
        return Step(e.account_id, None, "iam", "PutRolePolicy",
                    {"RoleName": str(record.get("name") or e.key.rsplit("/", 1)[-1]), "PolicyName": INLINE_POLICY,
                     "PolicyDocument": json.dumps(doc, sort_keys=True)}, self._fixes(e),
                    f"Puts the inline policy {INLINE_POLICY} on the delivery role: logs:CreateLogStream and "
                    f"logs:PutLogEvents on {', '.join(sorted(streams))}. Other policies are untouched.")

    def _step_ownership(self, e: _Edit) -> Step:
        return Step(e.account_id, e.region, "s3", "PutBucketOwnershipControls",
                    {"Bucket": e.key, "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
                    self._fixes(e), "Disables the bucket's ACLs (Object Ownership BucketOwnerEnforced): the bucket "
                                    "policy alone then governs access. Its ACL is the private default.")

    def _step_bucket_policy(self, e: _Edit) -> Step | Manual:
        bucket = e.data["bucket"]
        account, region = e.account_id, str(e.data["region"])
        uses = bucket.get("uses") or [{"destination": "s3", "prefix": ""}]
        resources = sorted({f"arn:aws:s3:::{e.key}/{log_key_prefix(u.get('prefix') or '', account)}*" for u in uses})
        doc = _with_statement(_doc(bucket.get("policy")), _bedrock_statement(
            "s3:PutObject", resources[0] if len(resources) == 1 else resources, [(account, region)]))
        trial = {**copy.deepcopy(bucket), "policy": doc}
        derive_bucket(trial, account, region)
        if trial.get("bedrock_can_put") is not True:
            return self._refused(e, "BIL-012", "Even with the Bedrock statement the bucket policy would not let "
                                               "Bedrock write (an explicit Deny?): change it by hand.")
        return Step(account, e.region, "s3", "PutBucketPolicy",
                    {"Bucket": e.key, "Policy": json.dumps(doc, sort_keys=True)}, self._fixes(e),
                    f"Rewrites the policy of bucket {e.key} keeping every statement and adding {SID}: "
                    f"bedrock.amazonaws.com may s3:PutObject under {', '.join(resources)} for account {account} in "
                    f"{region} only.")

    def _step_public_access_block(self, e: _Edit) -> Step:
        statements = e.data.get("statements") or []
        left = (f" The public statements ({', '.join(statements)}) stay in the bucket policy, neutralised; this plan "
                "removes nothing: delete them yourself.") if statements else ""
        return Step(e.account_id, e.region, "s3", "PutPublicAccessBlock",
                    {"Bucket": e.key, "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                        "RestrictPublicBuckets": True}}, self._fixes(e),
                    f"Turns on all four Block Public Access settings of bucket {e.key}: public ACLs are ignored and "
                    f"public policy grants are restricted to the account.{left}")

    def _step_lifecycle(self, e: _Edit) -> Step:
        bucket = e.data["bucket"]
        rules = [r for r in copy.deepcopy(bucket.get("lifecycle_rules") or [])
                 if not str(r.get("ID", "")).startswith(LIFECYCLE_ID)]
        ours = [_lifecycle_rule(p) for p in bucket.get("log_prefixes") or [log_key_prefix("", e.account_id)]]
        return Step(e.account_id, e.region, "s3", "PutBucketLifecycleConfiguration",
                    {"Bucket": e.key, "LifecycleConfiguration": {"Rules": [*rules, *ours]}}, self._fixes(e),
                    f"Keeps the bucket's {len(rules)} lifecycle rule(s) and adds {len(ours)} that move(s) the "
                    f"invocation logs to {TRANSITION['StorageClass']} after {TRANSITION['Days']} days. Nothing is "
                    "expired: add an Expiration once your retention policy allows.")

    def _step_cancel_key_deletion(self, e: _Edit) -> Step:
        return Step(e.account_id, e.region, "kms", "CancelKeyDeletion", {"KeyId": _key_id(e.key)}, self._fixes(e),
                    "Cancels the scheduled deletion of the key (it is then Disabled; the next step enables it).")

    def _step_enable_key(self, e: _Edit) -> Step:
        return Step(e.account_id, e.region, "kms", "EnableKey", {"KeyId": _key_id(e.key)}, self._fixes(e),
                    "Enables the key that encrypts the log destination.")

    def _step_key_policy(self, e: _Edit) -> Step | Manual:
        pairs = sorted(e.data["pairs"])
        doc = _with_statement(e.data["base"], _bedrock_statement("kms:GenerateDataKey", "*", pairs))
        for account, region in pairs:
            trial = {**copy.deepcopy(e.data["key"]), "policy": doc}
            derive_key(trial, account, region)
            if trial.get("bedrock_can_generate_data_key") is not True:
                return self._refused(e, "BIL-019", "Even with the Bedrock statement the key policy would not let "
                                                   "Bedrock generate data keys (an explicit Deny?): change it by hand.")
        return Step(e.account_id, e.region, "kms", "PutKeyPolicy",
                    {"KeyId": _key_id(e.key), "PolicyName": "default", "Policy": json.dumps(doc, sort_keys=True)},
                    self._fixes(e),
                    "Rewrites the key policy keeping every statement and adding "
                    f"{SID}: bedrock.amazonaws.com may kms:GenerateDataKey for "
                    f"{', '.join(f'{a}/{r}' for a, r in pairs)} only.")


# ---------------------------------------------------------------------------------------------- renderers

def _plan(ctx: RenderContext) -> FixPlan:
    if ctx.fix_plan is None:
        raise ValueError("the fix plan is built from the scan's facts: it is not available for this run")
    return ctx.fix_plan


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    return json_chunks(_plan(ctx).to_json(), indent=1, ensure_ascii=False)


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return b"".join(stream(result, ctx))


def schema() -> dict[str, Any]:
    """The JSON Schema that every fix-plan.json satisfies (reports/fix-plan.schema.json)."""
    from importlib import resources

    text = resources.files("audit_bedrock.reports").joinpath("fix-plan.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def cli_command(step: Step, profile: str) -> str:
    """The AWS CLI command of a step: the same parameters, through --cli-input-json.

    `profile` is put in as given (fix-plan.sh passes the expansion "$PROFILE_<account>"); every other word is
    quoted with shlex.quote, so a region or a parameter value from AWS is one literal word whatever it holds.
    """
    from botocore import xform_name

    service = CLI_SERVICE.get(step.service, step.service)
    words = [shlex.quote(w) for w in ("aws", service, xform_name(step.operation, "-"))] + ["--profile", profile]
    if step.region:
        words += ["--region", shlex.quote(step.region)]
    return " ".join([*words, "--cli-input-json", shlex.quote(json.dumps(step.parameters, sort_keys=True))])


def _comment(text: str) -> str:
    """A shell comment line: AWS-controlled text (account names, key prefixes in notes) on one line, so no newline,
    carriage return or other control character can end the comment and start a command."""
    return "# " + " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text).split())


def profile_variable(account: str) -> str:
    """The shell variable naming an account's AWS CLI profile: PROFILE_<account id>, a valid variable name always."""
    return "PROFILE_" + re.sub(r"[^A-Za-z0-9_]", "_", account)


def stream_shell(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    """fix-plan.sh, one chunk per account: the steps as AWS CLI commands, grouped per account, each with its own
    --profile.

    Every value from AWS reaches the script either inside a word quoted by shlex.quote (the --cli-input-json
    document, regions, the operation) or inside a one-line comment (`_comment`); the profile is the one unquoted
    expansion, "$PROFILE_<account>", in double quotes.
    """
    plan = _plan(ctx)
    names = {a.id: a.name for a in result.meta.accounts}
    changed = sorted({f"{s.service}:{s.operation}" for s in plan.steps})
    lines = [
        "#!/usr/bin/env bash",
        "# audit-bedrock fix plan: review every command before you run it. audit-bedrock never runs it.",
        _comment(f"Generated from the scan of {result.meta.started_at or 'unknown time'} "
                 f"({result.meta.organization_id or result.meta.caller_account}); re-scan before running it later."),
        f"# It changes: {', '.join(changed) or 'nothing'}.",
        "# It merges with what exists (policies keep every statement, lifecycle rules are kept), never deletes",
        "# anything, and can be re-run. Findings that need a decision are listed as notes at the end.",
        "# Set each account's AWS CLI profile below (PROFILE_<account>) before running it.",
        "set -euo pipefail",
        "export AWS_PAGER=\"\"  # AWS CLI v2 would page each command's output on a terminal",
        "",
        "# Runs a command; an error naming $1 means the change is already in place.",
        "ok_if() {",
        "  local expected=$1 out; shift",
        "  if ! out=$(\"$@\" 2>&1); then",
        "    case $out in *\"$expected\"*) echo \"already done ($expected)\";; *) echo \"$out\" >&2; return 1;; esac",
        "  else",
        "    [ -z \"$out\" ] || echo \"$out\"",
        "  fi",
        "}",
    ]
    per_account: dict[str, list[Step]] = {}
    for s in plan.steps:
        per_account.setdefault(s.account_id, []).append(s)
    for account in sorted(per_account):
        yield ("\n".join(lines) + "\n").encode("utf-8")
        var = profile_variable(account)
        label = f" ({names[account]})" if names.get(account) else ""
        lines = ["", _comment(f"---- account {account}{label}"),
                  f": \"${{{var}:?set {var} to the AWS CLI profile of this account}}\""]
        for s in per_account[account]:
            lines.append(_comment(f"{s.operation} in {s.region or 'global (IAM)'}: {s.note}"))
            lines.append(_comment(f"  fixes: {', '.join(s.fixes)}"))
            cmd = cli_command(s, f'"${var}"')
            lines.append(f"ok_if {shlex.quote(s.ok_if_error)} {cmd}" if s.ok_if_error else cmd)
    if plan.manual:
        lines += ["", "# ---- needs a decision (no command is guessed)"]
        for m in plan.manual:
            lines.append(_comment(f"{m.rule_id} {m.account_id} {m.region or 'account-wide'}: {m.note}"))
    lines.append("")
    yield "\n".join(lines).encode("utf-8")


def render_shell(result: ScanResult, ctx: RenderContext) -> bytes:
    return b"".join(stream_shell(result, ctx))
