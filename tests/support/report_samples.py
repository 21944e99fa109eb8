"""Hand-built ScanResults for the renderer tests (hostile names included) and a small HTML tree parser."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any

from audit_bedrock.findings import fingerprint
from audit_bedrock.model import AccountOutcome, Coverage, Finding, ScanMeta, ScanResult
from audit_bedrock.reports import RenderContext

HOSTILE = "<img src=x onerror=\"window.__xss=1\">"
HOSTILE_OU = "Root/<b>ou</b>"
HOSTILE_MESSAGE = "bucket <script>window.__xss=2</script> prefix"
HOSTILE_RESOURCE = "arn:aws:s3:::bucket/<svg onload=\"window.__xss=3\">"

PROD, EVIL, DEV, BROKEN, GONE = "111111111111", "222222222222", "333333333333", "444444444444", "555555555555"
ALL_TYPES = (("text", True), ("image", True), ("embedding", True), ("video", True), ("audio", True))

CATALOG: dict[str, dict[str, Any]] = {
    "BIL-001": {"id": "BIL-001", "title": "Model invocation logging is disabled", "severity": "high",
                "scope": "region", "category": "posture", "rationale": "No record of invocations.",
                "remediation": "Enable logging in every region.",
                "references": ["https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html"]},
    "BIL-003": {"id": "BIL-003", "title": "A required data type is not delivered", "severity": "medium",
                "scope": "region", "category": "posture", "rationale": "Some payloads are not logged.",
                "remediation": "Turn on the missing data types.",
                "references": ["javascript:alert(1)", "https://docs.aws.amazon.com/bedrock/latest/APIReference/"]},
    "BIL-004": {"id": "BIL-004", "title": "Large and binary payloads are silently dropped", "severity": "medium",
                "scope": "region", "category": "posture", "rationale": "CloudWatch events carry 100 KB.",
                "remediation": "Add a largeDataDeliveryS3Config.", "references": []},
    "BIL-010": {"id": "BIL-010", "title": "Orphaned delivery role", "severity": "low", "scope": "account",
                "category": "posture", "rationale": "Unused role.", "remediation": "Delete the role.",
                "references": ["https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles.html"]},
    "BIL-012": {"id": "BIL-012", "title": "Bucket policy does not let Bedrock write", "severity": "high",
                "scope": "region", "category": "posture", "rationale": "Delivery fails.",
                "remediation": "Grant s3:PutObject to bedrock.amazonaws.com.", "references": []},
    "SCAN-001": {"id": "SCAN-001", "title": "Account could not be entered", "severity": "high", "scope": "account",
                 "category": "coverage", "rationale": "Not audited.", "remediation": "Fix the role.",
                 "references": []},
}


def finding(rule_id: str, severity: str, account: str, name: str, region: str | None, resource: str,
            message: str = "", **kw: Any) -> Finding:
    """A finding with a real fingerprint id, as scanner/findings.py builds them."""
    cat = CATALOG.get(rule_id, {})
    return Finding(id=fingerprint(rule_id, account, region, resource), rule_id=rule_id,
                   severity=severity,  # type: ignore[arg-type]
                   title=str(cat.get("title", rule_id)), message=message or f"{rule_id} fired in {region}",
                   account_id=account, account_name=name, region=region, resource=resource,
                   remediation=str(cat.get("remediation", "")), **kw)


def sample_result(baseline: bool = False) -> ScanResult:
    """Five accounts (one hostile, one error, one skipped), three regions (one skipped everywhere)."""
    accounts = (
        AccountOutcome(PROD, "payments-prod", "Root/Prod", "scanned"),
        AccountOutcome(EVIL, HOSTILE, HOSTILE_OU, "scanned"),
        AccountOutcome(DEV, "data-science", "Root/Dev", "scanned"),
        AccountOutcome(BROKEN, "broken", "Root/Dev", "error", "AccessDenied: not authorized to perform sts:AssumeRole"),
        AccountOutcome(GONE, "legacy-closed", "Root/Sandbox", "skipped", "account is SUSPENDED"),
    )
    regions = ("us-east-1", "us-west-2", "me-south-1")
    cov: list[Coverage] = []
    for acct in (PROD, EVIL, DEV):
        cov.append(Coverage(acct, "me-south-1", "skipped", reason="region not enabled in this account"))
    cov += [
        Coverage(PROD, "us-east-1", "scanned", True, ("cloudwatch",), False, ALL_TYPES),
        Coverage(PROD, "us-west-2", "scanned", True, ("s3",), False, ALL_TYPES),
        Coverage(EVIL, "us-east-1", "scanned", True, ("s3",), False, ALL_TYPES),
        Coverage(EVIL, "us-west-2", "scanned", False),
        Coverage(DEV, "us-east-1", "scanned", True, ("s3",), False, (("text", True), ("image", False))),
        Coverage(DEV, "us-west-2", "error", reason="ThrottlingException: Rate exceeded"),
    ]
    cov += [Coverage(BROKEN, r, "error", reason="AccessDenied") for r in regions]
    findings = [
        finding("BIL-004", "high", PROD, "payments-prod", "us-east-1",
                "arn:aws:logs:us-east-1:111111111111:log-group:/bedrock/invocations"),
        finding("BIL-001", "high", EVIL, HOSTILE, "us-west-2",
                "arn:aws:bedrock:us-west-2:222222222222:model-invocation-logging"),
        finding("BIL-012", "high", EVIL, HOSTILE, "us-east-1", HOSTILE_RESOURCE, message=HOSTILE_MESSAGE),
        finding("BIL-010", "low", EVIL, HOSTILE, None, "arn:aws:iam::222222222222:role/old-delivery"),
        finding("BIL-003", "medium", DEV, "data-science", "us-east-1",
                "arn:aws:bedrock:us-east-1:333333333333:model-invocation-logging",
                properties={"missing_data_types": ["image", "video", "audio"],
                            "expired_suppression": {"reason": "migration window", "expires": "2020-01-31"}}),
        finding("BIL-004", "medium", DEV, "data-science", "us-east-1",
                "arn:aws:logs:us-east-1:333333333333:log-group:/dev/bedrock", status="suppressed",
                properties={"suppression": {"reason": "dev <em>sandbox</em>, accepted risk",
                                            "expires": "2099-12-31"}}),
        finding("SCAN-001", "high", BROKEN, "broken", None, "arn:aws:iam::444444444444:role/Audit",
                message="could not assume the role: AccessDenied"),
    ]
    fixed: tuple[Finding, ...] = ()
    if baseline:
        findings = [replace(f, baseline="unchanged") if f.rule_id in ("BIL-004", "SCAN-001") else f
                    for f in findings]
        fixed = (finding("BIL-001", "high", PROD, "payments-prod", "us-west-2",
                         "arn:aws:bedrock:us-west-2:111111111111:model-invocation-logging", baseline="unchanged"),)
    meta = ScanMeta("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "o-abc123", PROD, regions, accounts, 42,
                    incomplete=True)
    notices = ("suppression of BIL-003 for 333333333333 expired on 2020-01-31 and no longer applies "
               "(reason was: migration window)",)
    return ScanResult(meta, tuple(sorted(cov, key=lambda c: (c.account_id, c.region))),
                      tuple(sorted(findings, key=lambda f: (*f.sort_key(), f.id))), fixed, notices)


def context(baseline: str | None = None) -> RenderContext:
    return RenderContext(catalog=CATALOG, version="9.9.9", baseline=baseline)


# --- a minimal DOM from the standard library's HTMLParser -------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            if cls and cls not in n.classes:
                continue
            if any(n.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            out.append(n)
        return out

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'} class={cls} {attrs}>"
        return found[0]

    def by_id(self, ident: str) -> Node:
        return self.find(id=ident)

    def ancestors(self) -> Iterator[Node]:
        n = self.parent
        while n is not None:
            yield n
            n = n.parent


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.cur))

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        assert n is not None and n.parent is not None, f"unbalanced </{tag}>"
        self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)


def parse_html(text: str) -> Node:
    """Parse a page into a Node tree; unbalanced markup fails the test."""
    b = _TreeBuilder()
    b.feed(text)
    b.close()
    assert b.cur is b.root, f"unclosed <{b.cur.tag}>"
    return b.root
