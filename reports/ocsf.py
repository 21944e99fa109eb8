"""The findings.ocsf.json renderer: one OCSF Detection Finding (class 2004) per finding, built with py-ocsf-models.

Class and version: OCSF 1.5.0 (py_ocsf_models.OCSF_VERSION of the pinned py-ocsf-models 0.10, so the schema
version we claim is the one the models implement), class Detection Finding, uid 2004, category Findings (2).
Why 2004: it is the Findings class for "a security issue or weakness detected", which a logging misconfiguration
is; it is the class Prowler's OCSF output uses, so pipelines that already ingest Prowler (Security Lake, SIEM
mappings) take these unchanged; and Compliance Finding (2003) would need a `compliance` object naming a standard
and its requirements, which the Bedrock logging rules do not map to. Each item is built as the library's
DetectionFinding model (its validation runs on construction), then dumped without nulls.

Mapping:
- severity -> severity_id (critical 5, high 4, medium 3, low 2, info 1);
- status: an open finding new since the baseline is New (activity Create), an unchanged one is Other with
  status "Unchanged" (activity Update; OCSF has no normalized value for it), a suppressed one is Suppressed, and
  a finding the baseline lists as fixed is Resolved (activity Close);
- `finding_info.uid` is the finding id, `finding_info.analytic` the rule (uid, title);
- `resources[0]`: the ARN (uid), its type, region and partition, and the account as its owner group;
- `cloud`: provider AWS, the account (uid, name) and the organization (uid, OU path);
- `remediation`: the rule's remediation and its references.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.account import Account, TypeID
from py_ocsf_models.objects.analytic import Analytic
from py_ocsf_models.objects.cloud import Cloud
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.group import Group
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.organization import Organization
from py_ocsf_models.objects.product import Product
from py_ocsf_models.objects.remediation import Remediation
from py_ocsf_models.objects.resource_details import ResourceDetails

from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.json_report import utf8_chunks
from audit_bedrock.reports.resources import parse_arn

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

SEVERITY_ID = {"critical": SeverityID.Critical, "high": SeverityID.High, "medium": SeverityID.Medium,
               "low": SeverityID.Low, "info": SeverityID.Informational}
ANALYTIC_RULE = 1  # OCSF analytic type_id 1: Rule


def _epoch_ms(stamp: str) -> int:
    if not stamp:
        return 0
    return int(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _state(f: Finding, fixed: bool) -> tuple[StatusID, str, ActivityID, DetectionFindingTypeID]:
    if fixed:
        return StatusID.Resolved, "Resolved", ActivityID.Close, DetectionFindingTypeID.Close
    if f.status == "suppressed":
        return StatusID.Suppressed, "Suppressed", ActivityID.Update, DetectionFindingTypeID.Update
    if f.baseline == "unchanged":
        return StatusID.Other, "Unchanged", ActivityID.Update, DetectionFindingTypeID.Update
    return StatusID.New, "New", ActivityID.Create, DetectionFindingTypeID.Create


def detection_finding(f: Finding, result: ScanResult, ctx: RenderContext, fixed: bool = False) -> DetectionFinding:
    """The OCSF model of one finding."""
    m = result.meta
    when = _epoch_ms(m.finished_at or m.started_at)
    arn = parse_arn(f.resource)
    _, cfn_type = arn.types()
    cat = ctx.catalog.get(f.rule_id, {})
    ou = next((a.ou_path for a in m.accounts if a.id == f.account_id), "")
    status_id, status, activity, type_uid = _state(f, fixed)
    refs = [str(r) for r in cat.get("references") or () if str(r).startswith(("https://", "http://"))]
    unmapped: dict[str, Any] = {"rule_id": f.rule_id, "baseline": "fixed" if fixed else f.baseline,
                                "properties": f.properties}
    return DetectionFinding(
        metadata=Metadata(product=Product(name="audit-bedrock", vendor_name="audit-bedrock", version=ctx.version,
                                          uid="audit-bedrock"),
                          version=OCSF_VERSION, profiles=["cloud"], event_code=f.rule_id, uid=f.id),
        time=when,
        severity_id=SEVERITY_ID[f.severity],
        severity=f.severity.capitalize() if f.severity != "info" else "Informational",
        status_id=status_id,
        status=status,
        activity_id=activity,
        activity_name=activity.name,
        type_uid=type_uid,
        type_name=f"Detection Finding: {activity.name}",
        message=f.message or f.title,
        finding_info=FindingInformation(
            uid=f.id, title=f.title or f.rule_id, desc=f.message or f.title,
            types=[str(cat.get("category") or "posture")],
            analytic=Analytic(uid=f.rule_id, name=str(cat.get("title") or f.title or f.rule_id),
                              type="Rule", type_id=ANALYTIC_RULE),
            modified_time=when),
        resources=[ResourceDetails(uid=f.resource, name=arn.resource or f.resource, type=cfn_type,
                                   region=f.region or arn.region or None, cloud_partition=arn.partition,
                                   group=Group(uid=f.account_id, name=f.account_name or None, type="AWS Account"))],
        cloud=Cloud(provider="AWS", region=f.region,
                    account=Account(uid=f.account_id, name=f.account_name or f.account_id,
                                    type="AWS Account", type_id=TypeID.AWS_Account),
                    org=Organization(uid=m.organization_id, ou_name=ou or None) if m.organization_id else None),
        remediation=Remediation(desc=str(cat.get("remediation") or f.remediation or "-"), references=refs or None),
        unmapped=unmapped,
    )


def events(result: ScanResult, ctx: RenderContext) -> Iterator[DetectionFinding]:
    """Every finding, then every fixed one, one model at a time."""
    for f in result.findings:
        yield detection_finding(f, result, ctx)
    for f in result.fixed:
        yield detection_finding(f, result, ctx, fixed=True)


def _pieces(result: ScanResult, ctx: RenderContext) -> Iterator[str]:
    yield "["
    for i, ev in enumerate(events(result, ctx)):
        yield ("\n" if i == 0 else ",\n") + ev.model_dump_json(exclude_none=True)
    yield "\n]"


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    return utf8_chunks(_pieces(result, ctx), "\n")


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return b"".join(stream(result, ctx))
