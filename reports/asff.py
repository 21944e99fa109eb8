"""The findings.asff.json renderer: AWS Security Finding Format findings, each valid BatchImportFindings input.

Each finding is imported with the account's default custom product
(`arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/default`), in the finding's own region (account-wide
findings in the context's home region). `Id` is the finding id, so a re-import updates the finding instead of
adding a second one. Findings that a baseline lists as fixed are included as ARCHIVED / PASSED / RESOLVED, so a
re-import closes them. Security Hub keeps `Workflow` as its users set it once a finding exists, and takes severity
and types from `FindingProviderFields` on updates: both are set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.json_report import json_chunks
from audit_bedrock.reports.resources import parse_arn

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices/Bedrock Model Invocation Logging"
LABEL = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW", "info": "INFORMATIONAL"}
# AwsSecurityFinding limits, as botocore's securityhub model documents them (botocore's ParamValidator checks only
# types, required members and minimums, so they are kept here): Title 256, Description 1024,
# Remediation.Recommendation.Text 512, ProductFields at most 50 pairs with keys of 128 and values of 2048 characters;
# every string matches NonEmptyString's pattern `.*\S.*`; Resources 1 to 32, Types at most 50.
_TITLE, _DESCRIPTION, _RECOMMENDATION, _FIELD_VALUE = 256, 1024, 512, 2048
_EPOCH = "1970-01-01T00:00:00Z"


def _clip(text: str, limit: int) -> str:
    """`text` on one line, never blank (NonEmptyString), at most `limit` characters."""
    text = " ".join(str(text).split()) or "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def product_arn(partition: str, region: str, account: str) -> str:
    """The account's default custom-integration product: what BatchImportFindings accepts from that account."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def import_region(f: Finding, home_region: str) -> str:
    """The Security Hub region a finding is imported into: its own, or the home region when account-wide."""
    return f.region or home_region


def to_asff(f: Finding, ctx: RenderContext, created: str, updated: str, fixed: bool = False) -> dict[str, Any]:
    """One AwsSecurityFinding (botocore shape `AwsSecurityFinding`)."""
    arn = parse_arn(f.resource)
    region = import_region(f, ctx.home_region)
    asff_type, _ = arn.types()
    cat = ctx.catalog.get(f.rule_id, {})
    refs = [str(r) for r in cat.get("references") or () if str(r).startswith("https://")]
    recommendation: dict[str, Any] = {"Text": _clip(str(cat.get("remediation") or f.remediation), _RECOMMENDATION)}
    if refs:
        recommendation["Url"] = refs[0]
    if not f.resource.strip():  # the finding is about the account itself: Security Hub's own AwsAccount form
        asff_type, resource_id = "AwsAccount", f"AWS::::Account:{f.account_id}"
    else:
        resource_id = f.resource
    resource: dict[str, Any] = {"Type": asff_type, "Id": resource_id, "Partition": arn.partition,
                                "Region": f.region or region}
    if asff_type == "Other":
        resource["Details"] = {"Other": {"ArnService": arn.service or "unknown", "ResourceKind": arn.kind or "-"}}
    if fixed:
        compliance, workflow, record = "PASSED", "RESOLVED", "ARCHIVED"
    else:
        compliance, record = "FAILED", "ACTIVE"
        workflow = "SUPPRESSED" if f.status == "suppressed" else "NEW"
    fields = {"audit-bedrock/rule_id": f.rule_id, "audit-bedrock/finding_id": f.id,
              "audit-bedrock/baseline": "fixed" if fixed else f.baseline, "audit-bedrock/status": f.status}
    if f.account_name.strip():
        fields["audit-bedrock/account_name"] = f.account_name
    fields = {k: _clip(v, _FIELD_VALUE) for k, v in fields.items()}
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": f.id,
        "ProductArn": product_arn(arn.partition, region, f.account_id),
        "ProductName": "audit-bedrock",
        "CompanyName": "audit-bedrock",
        "GeneratorId": f"audit-bedrock/{f.rule_id}",
        "AwsAccountId": f.account_id,
        "Region": region,
        "Types": [FINDING_TYPE],
        "CreatedAt": created or _EPOCH,
        "UpdatedAt": updated or created or _EPOCH,
        "Severity": {"Label": LABEL[f.severity], "Original": f.severity},
        "FindingProviderFields": {"Severity": {"Label": LABEL[f.severity], "Original": f.severity},
                                  "Types": [FINDING_TYPE]},
        "Title": _clip(f"{f.rule_id} {f.title}", _TITLE),
        "Description": _clip(f.message if f.message.strip() else f.title, _DESCRIPTION),
        "Remediation": {"Recommendation": recommendation},
        "ProductFields": fields,
        "Resources": [resource],
        "Compliance": {"Status": compliance},
        "Workflow": {"Status": workflow},
        "RecordState": record,
    }


def findings(result: ScanResult, ctx: RenderContext) -> list[dict[str, Any]]:
    """Every finding, then every fixed one, as ASFF."""
    m = result.meta
    out = [to_asff(f, ctx, m.started_at, m.finished_at) for f in result.findings]
    out += [to_asff(f, ctx, m.started_at, m.finished_at, fixed=True) for f in result.fixed]
    return out


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    return json_chunks(findings(result, ctx), indent=1, ensure_ascii=False)


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return b"".join(stream(result, ctx))
