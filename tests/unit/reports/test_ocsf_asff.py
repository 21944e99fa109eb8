"""OCSF and ASFF renderers, validated with the ecosystem's own validators; the Security Hub importer on moto."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.session import get_session
from botocore.validate import ParamValidator
from moto import mock_aws
from py_ocsf_models import OCSF_VERSION
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from audit_bedrock.reports import FORMATS, outputs
from audit_bedrock.reports.asff import findings as asff_findings
from audit_bedrock.reports.asff import render as render_asff
from audit_bedrock.reports.ocsf import render as render_ocsf
from audit_bedrock.reports.securityhub import MAX_BATCH, import_findings
from tests.support.report_samples import DEV, EVIL, PROD, context, finding, sample_result

# botocore's own model of the request: securityhub service-2.json, operation BatchImportFindings
# (input shape BatchImportFindingsRequest, Findings: list of AwsSecurityFinding).
_SECURITYHUB = get_session().get_service_model("securityhub")
_IMPORT_INPUT = _SECURITYHUB.operation_model("BatchImportFindings").input_shape
MAX_FINDING_BYTES = 240 * 1024  # API reference, BatchImportFindings: "The maximum allowed size for a finding is 240 Kb"


# The limits botocore's model states but its ParamValidator does not check (it checks types, required members and
# minimums): each member's documented maximums, and each string shape's `pattern` (NonEmptyString: `.*\S.*`).
_MAX_LENGTH = re.compile(r"Maximum (?:length )?of (\d+)(?: length)?")
_MAX_ITEMS = re.compile(r"Maximum number of (\d+) items")
_MAP_LIMITS = re.compile(r"up to (\d+) key-value pairs.*?key can contain up to (\d+) characters.*?value can contain "
                         r"up to (\d+) characters", re.S)
_NAMESPACES = re.compile(r"Valid namespace values are: ([^<]+)<")


def _model_limits(value: Any, shape: Any, path: str, errors: list[str]) -> None:
    doc = getattr(shape, "documentation", "") or ""
    kind = shape.type_name
    if kind == "structure":
        for key, item in value.items():
            _model_limits(item, shape.members[key], f"{path}.{key}", errors)
    elif kind == "list":
        m = _MAX_ITEMS.search(doc)
        if m and len(value) > int(m.group(1)):
            errors.append(f"{path}: {len(value)} items > {m.group(1)}")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            errors.append(f"{path}: {len(value)} items > {shape.metadata['max']}")
        for i, item in enumerate(value):
            _model_limits(item, shape.member, f"{path}[{i}]", errors)
    elif kind == "map":
        m = _MAP_LIMITS.search(doc)
        if m:
            pairs, key_len, value_len = map(int, m.groups())
            if len(value) > pairs:
                errors.append(f"{path}: {len(value)} pairs > {pairs}")
            errors += [f"{path}: key {k[:40]!r} > {key_len}" for k in value if len(k) > key_len]
            errors += [f"{path}.{k}: value > {value_len}" for k, v in value.items() if len(v) > value_len]
        for k, v in value.items():
            _model_limits(k, shape.key, f"{path} key", errors)
            _model_limits(v, shape.value, f"{path}.{k}", errors)
    elif kind == "string":
        m = _MAX_LENGTH.search(doc)
        if m and len(value) > int(m.group(1)):
            errors.append(f"{path}: {len(value)} characters > {m.group(1)}")
        pattern = shape.metadata.get("pattern")
        if pattern and not re.search(pattern, value):
            errors.append(f"{path}: {value[:40]!r} does not match {pattern}")
        if "enum" in shape.metadata and value not in shape.metadata["enum"]:
            errors.append(f"{path}: {value!r} not in {shape.metadata['enum']}")


def validate_import(batch: list[dict[str, Any]]) -> None:
    """One BatchImportFindings request: botocore's ParamValidator, the model's limits, the finding type namespaces."""
    report = ParamValidator().validate({"Findings": batch}, _IMPORT_INPUT)
    assert not report.has_errors(), report.generate_report()
    errors: list[str] = []
    _model_limits({"Findings": batch}, _IMPORT_INPUT, "", errors)
    finding_shape = _SECURITYHUB.shape_for("AwsSecurityFinding")
    namespaces = {n.strip() for n in _NAMESPACES.search(finding_shape.members["Types"].documentation).group(1)
                  .split("|")}  # type: ignore[union-attr]
    for i, f in enumerate(batch):
        errors += [f"[{i}].Types: {t!r}" for t in f.get("Types", []) if t.split("/")[0] not in namespaces
                   or not 1 <= t.count("/") <= 2]
        if not re.fullmatch(r"\d{12}", f["AwsAccountId"]):  # "Length Constraints: 12", an account id
            errors.append(f"[{i}].AwsAccountId: {f['AwsAccountId']!r}")
        for stamp in ("CreatedAt", "UpdatedAt"):  # Security Hub's timestamp format (RFC 3339, as the API guide says)
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", f[stamp]):
                errors.append(f"[{i}].{stamp}: {f[stamp]!r}")
    assert not errors, "; ".join(errors[:10])


def by_id(items: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    return {key(i): i for i in items}


def test_formats_are_registered() -> None:
    assert FORMATS["ocsf"][0] == "findings.ocsf.json"
    assert FORMATS["asff"][0] == "findings.asff.json"
    assert [name for name, _ in outputs("fix")] == ["fix-plan.json", "fix-plan.sh"]


# --- OCSF ---------------------------------------------------------------------------------------------

def test_ocsf_items_validate_with_the_library_model() -> None:
    result = sample_result(baseline=True)
    items = json.loads(render_ocsf(result, context("prev.json")))
    assert len(items) == len(result.findings) + len(result.fixed)
    for item in items:
        ev = DetectionFinding.model_validate(item)
        # the model ignores unknown keys: a round trip proves every key is one it defines, every value its type
        assert json.loads(ev.model_dump_json(exclude_none=True)) == item
        assert ev.class_uid == 2004 and ev.category_uid == 2 and ev.metadata.version == OCSF_VERSION == "1.5.0"
        assert ev.type_uid == 200400 + ev.activity_id
    assert {i["finding_info"]["uid"] for i in items} == {f.id for f in (*result.findings, *result.fixed)}


@pytest.mark.parametrize(("rule", "account", "expect"), [
    pytest.param("BIL-012", EVIL, {"severity_id": 4, "status_id": 1, "status": "New", "activity_id": 1},
                 id="new-open-high"),
    pytest.param("SCAN-001", "444444444444", {"severity_id": 4, "status_id": 99, "status": "Unchanged",
                                              "activity_id": 2}, id="unchanged"),
    pytest.param("BIL-003", DEV, {"severity_id": 3, "status_id": 1}, id="medium"),
    pytest.param("BIL-010", EVIL, {"severity_id": 2}, id="low-account-scope"),
])
def test_ocsf_mapping(rule: str, account: str, expect: dict[str, Any]) -> None:
    result = sample_result(baseline=True)
    items = by_id(json.loads(render_ocsf(result, context())), lambda i: i["finding_info"]["uid"])
    f = next(f for f in result.findings if f.rule_id == rule and f.account_id == account)
    item = items[f.id]
    for key, value in expect.items():
        assert item[key] == value, key
    assert item["finding_info"]["analytic"]["uid"] == rule
    res = item["resources"][0]
    assert res["uid"] == f.resource and res["group"]["uid"] == account
    assert item["cloud"]["provider"] == "AWS" and item["cloud"]["account"]["uid"] == account
    assert item["cloud"]["org"]["uid"] == "o-abc123"
    assert item["remediation"]["desc"]
    if f.region:
        assert res["region"] == f.region


def test_ocsf_suppressed_and_fixed() -> None:
    result = sample_result(baseline=True)
    items = json.loads(render_ocsf(result, context()))
    sup = next(f for f in result.findings if f.status == "suppressed")
    states = {i["finding_info"]["uid"]: (i["status_id"], i["activity_id"]) for i in items}
    assert states[sup.id] == (3, 2)  # Suppressed, Update
    assert states[result.fixed[0].id] == (4, 3)  # Resolved, Close


def test_ocsf_resource_types() -> None:
    items = json.loads(render_ocsf(sample_result(), context()))
    types = {i["resources"][0]["uid"].split(":")[2]: i["resources"][0]["type"] for i in items}
    assert types["logs"] == "AWS::Logs::LogGroup"
    assert types["iam"] == "AWS::IAM::Role"
    assert types["bedrock"] == "AWS::Bedrock::ModelInvocationLoggingConfiguration"


# --- ASFF ---------------------------------------------------------------------------------------------

def test_asff_is_valid_batch_import_input() -> None:
    result = sample_result(baseline=True)
    items = json.loads(render_asff(result, context()))
    assert len(items) == len(result.findings) + len(result.fixed)
    for start in range(0, len(items), MAX_BATCH):
        validate_import(items[start:start + MAX_BATCH])
    for item in items:
        assert len(json.dumps(item).encode()) < MAX_FINDING_BYTES


def test_asff_validator_can_fail() -> None:
    item = json.loads(render_asff(sample_result(), context()))[0]
    del item["Resources"]
    with pytest.raises(AssertionError, match="Resources"):
        validate_import([item])


@pytest.mark.parametrize(("select", "expect"), [
    pytest.param(lambda r: next(f for f in r.findings if f.rule_id == "BIL-012"),
                 {"Compliance": "FAILED", "Workflow": "NEW", "RecordState": "ACTIVE", "Label": "HIGH",
                  "Type": "AwsS3Bucket", "Region": "us-east-1"}, id="open"),
    pytest.param(lambda r: next(f for f in r.findings if f.status == "suppressed"),
                 {"Compliance": "FAILED", "Workflow": "SUPPRESSED", "RecordState": "ACTIVE", "Label": "MEDIUM",
                  "Type": "Other"}, id="suppressed"),
    pytest.param(lambda r: r.fixed[0],
                 {"Compliance": "PASSED", "Workflow": "RESOLVED", "RecordState": "ARCHIVED", "Label": "HIGH"},
                 id="fixed"),
    pytest.param(lambda r: next(f for f in r.findings if f.rule_id == "BIL-010"),
                 {"Label": "LOW", "Type": "AwsIamRole", "Region": "eu-central-1"}, id="account-scope-home-region"),
])
def test_asff_fields(select: Any, expect: dict[str, str]) -> None:
    result = sample_result(baseline=True)
    ctx = replace(context(), home_region="eu-central-1")
    f = select(result)
    item = by_id(asff_findings(result, ctx), lambda i: i["Id"])[f.id]
    got = {"Compliance": item["Compliance"]["Status"], "Workflow": item["Workflow"]["Status"],
           "RecordState": item["RecordState"], "Label": item["Severity"]["Label"],
           "Type": item["Resources"][0]["Type"], "Region": item["Region"]}
    assert {k: got[k] for k in expect} == expect
    region = item["Region"]
    assert item["ProductArn"] == f"arn:aws:securityhub:{region}:{f.account_id}:product/{f.account_id}/default"
    assert item["AwsAccountId"] == f.account_id and item["Id"] == f.id
    assert item["Remediation"]["Recommendation"]["Text"]
    assert item["FindingProviderFields"]["Severity"]["Label"] == item["Severity"]["Label"]


@pytest.mark.parametrize(("change", "check"), [
    pytest.param({"message": "x" * 5000, "title": "t" * 400},
                 lambda i: len(i["Description"]) == 1024 and len(i["Title"]) == 256, id="long-text-clipped"),
    pytest.param({"message": " \n\t ", "title": "Logging is off"},
                 lambda i: i["Description"] == "Logging is off", id="blank-message-uses-title"),
    pytest.param({"message": "", "title": ""}, lambda i: i["Description"] == "-", id="nothing-to-say-not-blank"),
    pytest.param({"remediation": "r" * 900}, lambda i: len(i["Remediation"]["Recommendation"]["Text"]) <= 512,
                 id="long-remediation"),
    pytest.param({"account_name": "n" * 3000},
                 lambda i: len(i["ProductFields"]["audit-bedrock/account_name"]) == 2048, id="long-product-field"),
    pytest.param({"account_name": "   "}, lambda i: "audit-bedrock/account_name" not in i["ProductFields"],
                 id="blank-account-name-left-out"),
    pytest.param({"resource": ""}, lambda i: i["Resources"][0] == {
        "Type": "AwsAccount", "Id": f"AWS::::Account:{PROD}", "Partition": "aws", "Region": "us-east-1"},
                 id="account-itself"),
    pytest.param({"message": "line one\nline two\r\n"}, lambda i: i["Description"] == "line one line two",
                 id="one-line"),
])
def test_asff_respects_the_model_limits(change: dict[str, Any], check: Any) -> None:
    result = sample_result()
    base = next(f for f in result.findings if f.account_id == PROD and f.region == "us-east-1")
    ctx = replace(context(), catalog={})  # the finding's own remediation, not the catalog's
    item = asff_findings(replace(result, findings=(replace(base, **change),), fixed=()), ctx)[0]
    validate_import([item])
    assert check(item)


@pytest.mark.parametrize(("breaks", "words"), [
    pytest.param(lambda i: i.update(Title="t" * 257), "Title: 257", id="title-length"),
    pytest.param(lambda i: i.update(Description="   "), "does not match", id="blank-string"),
    pytest.param(lambda i: i["ProductFields"].update({f"k{n}": "v" for n in range(60)}), "pairs", id="too-many-pairs"),
    pytest.param(lambda i: i.update(Resources=i["Resources"] * 33), "Resources: 33 items", id="too-many-resources"),
    pytest.param(lambda i: i.update(Types=["Bedrock/Logging/Off"]), "Types", id="unknown-namespace"),
    pytest.param(lambda i: i.update(Region="x" * 17), "Region: 17", id="region-length"),
    pytest.param(lambda i: i.update(CreatedAt="2026-01-01 00:00"), "CreatedAt", id="timestamp"),
    pytest.param(lambda i: i["Compliance"].update(Status="BROKEN"), "not in", id="enum"),
])
def test_asff_limit_checks_can_fail(breaks: Any, words: str) -> None:
    item = json.loads(render_asff(sample_result(), context()))[0]
    breaks(item)
    with pytest.raises(AssertionError, match=words):
        validate_import([item])


def test_more_than_100_findings_are_never_one_request() -> None:
    """BatchImportFindingsRequestFindingList has max 100 (ParamValidator does not check a maximum: the walk does)."""
    with pytest.raises(AssertionError, match="101 items > 100"):
        validate_import(_many(101))


# --- Security Hub import (moto) -----------------------------------------------------------------------

def _many(n: int) -> list[dict[str, Any]]:
    result = sample_result()
    base = next(f for f in result.findings if f.rule_id == "BIL-004" and f.account_id == PROD)
    fs = [replace(base, id=f"{i:032x}", resource=f"{base.resource}-{i}") for i in range(n)]
    return asff_findings(replace(result, findings=tuple(fs), fixed=()), context())


class Recording:
    """A real (moto) client that records each batch's size and can fail chosen ids on the first attempts."""

    def __init__(self, client: Any, flaky: dict[str, int] | None = None) -> None:
        self.client = client
        self.flaky = dict(flaky or {})
        self.sizes: list[int] = []

    def batch_import_findings(self, Findings: list[dict[str, Any]]) -> dict[str, Any]:
        self.sizes.append(len(Findings))
        fail = [f for f in Findings if self.flaky.get(f["Id"], 0) > 0]
        for f in fail:
            self.flaky[f["Id"]] -= 1
        ok = [f for f in Findings if f not in fail]
        reply: dict[str, Any] = self.client.batch_import_findings(Findings=ok) if ok else \
            {"FailedCount": 0, "SuccessCount": 0, "FailedFindings": []}
        # Shape ImportFindingsError: Id, ErrorCode, ErrorMessage (securityhub service-2.json)
        reply["FailedFindings"] = [*reply.get("FailedFindings", []),
                                   *({"Id": f["Id"], "ErrorCode": "InternalException", "ErrorMessage": "try again"}
                                     for f in fail)]
        reply["FailedCount"] = len(reply["FailedFindings"])
        return reply


@mock_aws
def test_import_batches_of_at_most_100_and_reimport_updates() -> None:
    client = boto3.client("securityhub", region_name="us-east-1")
    client.enable_security_hub()
    rec = Recording(client)
    items = _many(250)
    report = import_findings(items, lambda account, region: rec, sleep=lambda s: None)
    assert rec.sizes == [100, 100, 50]
    assert report.imported == 250 and not report.failed and report.calls == 3
    got = client.get_findings(MaxResults=100)
    assert len(got["Findings"]) == 100  # moto pages; the total is checked below
    again = import_findings(items, lambda account, region: rec, sleep=lambda s: None)
    assert again.imported == 250
    total, token = 0, None
    while True:
        page = client.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        total += len(page["Findings"])
        token = page.get("NextToken")
        if not token:
            break
    assert total == 250  # same Id: updated, not duplicated


@pytest.mark.parametrize(("failures", "attempts", "imported", "failed", "calls"), [
    pytest.param(1, 3, 5, 0, 2, id="retried-once"),
    pytest.param(2, 3, 5, 0, 3, id="retried-twice"),
    pytest.param(5, 3, 4, 1, 3, id="reported-after-last-attempt"),
])
@mock_aws
def test_import_retries_failed_findings(failures: int, attempts: int, imported: int, failed: int,
                                        calls: int) -> None:
    client = boto3.client("securityhub", region_name="us-east-1")
    client.enable_security_hub()
    items = _many(5)
    rec = Recording(client, flaky={items[2]["Id"]: failures})
    pauses: list[float] = []
    report = import_findings(items, lambda account, region: rec, attempts=attempts, sleep=pauses.append)
    assert (report.imported, len(report.failed), report.calls) == (imported, failed, calls)
    if failed:
        assert report.failed[0].id == items[2]["Id"] and report.failed[0].code == "InternalException"
    assert len(pauses) == calls - 1


@mock_aws
def test_import_uses_each_accounts_own_client_and_region() -> None:
    result = sample_result()
    items = asff_findings(result, context())
    asked: list[tuple[str, str]] = []

    def client_for(account: str, region: str) -> Any:
        asked.append((account, region))
        c = boto3.client("securityhub", region_name=region)
        return c

    report = import_findings(items, client_for, sleep=lambda s: None)
    assert report.imported == len(items)
    assert sorted(asked) == sorted({(i["AwsAccountId"], i["Region"]) for i in items})


@mock_aws
def test_import_reports_a_client_that_cannot_be_had() -> None:
    items = _many(3)

    def client_for(account: str, region: str) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to assume"}}, "AssumeRole")

    report = import_findings(items, client_for, sleep=lambda s: None)
    assert report.imported == 0 and {f.code for f in report.failed} == {"AccessDenied"} and len(report.failed) == 3


def test_finding_helper_is_shared() -> None:  # keeps the sample's ids: fingerprints, not positions
    f = finding("BIL-012", "high", PROD, "p", "us-east-1", "arn:aws:s3:::b")
    assert len(f.id) == 32


# --- Security Hub import: each response shape of BatchImportFindings, through botocore's Stubber -------------------
# The Stubber checks each request against botocore's BatchImportFindingsRequest (the client's own ParamValidator, and
# `expected_params`) and each canned response against BatchImportFindingsResponse {FailedCount, SuccessCount,
# FailedFindings: ImportFindingsErrorList of ImportFindingsError {Id, ErrorCode, ErrorMessage}} (securityhub
# service-2.json). Whole-call errors are the operation's declared errors: InternalException, InvalidInputException,
# LimitExceededException, InvalidAccessException.

def _ok(ids: list[str], failed: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """A BatchImportFindingsResponse for a call with `ids`, `failed` ids refused with (ErrorCode, ErrorMessage)."""
    failed = failed or {}
    return {"FailedCount": len(failed), "SuccessCount": len(ids) - len(failed),
            "FailedFindings": [{"Id": i, "ErrorCode": c, "ErrorMessage": m} for i, (c, m) in failed.items()]}


INTERNAL = ("InternalFailure", "Internal service failure")
REFUSED = ("InvalidInput", "Finding does not adhere to Amazon Finding Format.")
# (findings, [(positions sent in the call, its response or (error code, HTTP status))...], imported, failed codes)
STUB_CASES: list[Any] = [
    pytest.param(5, [(range(5), lambda ids: _ok(ids))], 5, {}, id="all-imported"),
    pytest.param(5, [(range(5), lambda ids: _ok(ids, {ids[2]: INTERNAL})), ([2], lambda ids: _ok(ids))], 5, {},
                 id="failed-finding-retried-alone"),
    pytest.param(5, [(range(5), lambda ids: _ok(ids, {ids[1]: INTERNAL, ids[3]: INTERNAL})),
                     ([1, 3], lambda ids: _ok(ids, {ids[1]: INTERNAL})), ([3], lambda ids: _ok(ids))], 5, {},
                 id="retried-until-imported"),
    pytest.param(5, [(range(5), lambda ids: _ok(ids, {ids[2]: INTERNAL})),
                     ([2], lambda ids: _ok(ids, {ids[0]: INTERNAL})),
                     ([2], lambda ids: _ok(ids, {ids[0]: INTERNAL}))], 4, {"InternalFailure": 1},
                 id="reported-after-the-last-attempt"),
    pytest.param(5, [(range(5), lambda ids: _ok(ids, {ids[4]: REFUSED}))], 4, {"InvalidInput": 1},
                 id="refused-finding-not-retried"),
    pytest.param(150, [(range(100), lambda ids: _ok(ids)), (range(100, 150), lambda ids: _ok(ids))], 150, {},
                 id="batches-of-100"),
    pytest.param(5, [(range(5), ("InvalidInputException", 400))], 0, {"InvalidInputException": 5},
                 id="whole-call-invalid-input"),
    pytest.param(5, [(range(5), ("InternalException", 500))], 0, {"InternalException": 5},
                 id="whole-call-internal-reported"),
    pytest.param(150, [(range(100), ("InvalidAccessException", 401))], 0, {"InvalidAccessException": 150},
                 id="security-hub-not-enabled-stops-the-account-region"),
]


@pytest.mark.parametrize(("n", "calls", "imported", "failed"), STUB_CASES)
def test_import_handles_each_response_shape(n: int, calls: list[Any], imported: int, failed: dict[str, int]) -> None:
    from botocore.stub import Stubber

    items = _many(n)
    client = boto3.client("securityhub", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        for positions, reply in calls:
            sent = [items[i] for i in positions]
            ids = [f["Id"] for f in sent]
            if callable(reply):
                stub.add_response("batch_import_findings", reply(ids), {"Findings": sent})
            else:
                code, status = reply
                stub.add_client_error("batch_import_findings", code, f"{code} for this call", status,
                                      expected_params={"Findings": sent})
        report = import_findings(items, lambda account, region: client, sleep=lambda s: None)
        stub.assert_no_pending_responses()
    assert report.imported == imported and report.calls == len(calls)
    codes: dict[str, int] = {}
    for f in report.failed:
        codes[f.code] = codes.get(f.code, 0) + 1
    assert codes == failed
    assert not {f.id for f in report.failed} - {i["Id"] for i in items}
    assert sum(c for *_, c, _m in report.failure_groups()) == len(report.failed)


class Canned:
    """A raw HTTP response for botocore's before-send hook: what Security Hub answers, without a network."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_throttling_is_retried_by_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """The importer's client (Sessions, adaptive retries) retries a 429 ThrottlingException on its own: the importer
    makes one call, the wire sees three. Error shape: rest-json, the code in X-Amzn-ErrorType (botocore parsers)."""
    import time

    from botocore.awsrequest import AWSResponse

    from audit_bedrock.aws.clients import Sessions

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setattr(time, "sleep", lambda s: None)  # botocore's backoff (botocore.endpoint, retries.bucket)
    sessions = Sessions(endpoint_url="http://127.0.0.1:9", max_pool=1)
    items = _many(3)
    sent: list[int] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(len(json.loads(request.body)["Findings"]))
        if len(sent) <= 2:
            return AWSResponse(request.url, 429, {"X-Amzn-ErrorType": "ThrottlingException:http://internal"},
                               Canned(b'{"message": "Rate exceeded"}'))
        return AWSResponse(request.url, 200, {}, Canned(json.dumps(_ok([i["Id"] for i in items])).encode()))

    try:
        client = sessions.client("securityhub", "us-east-1", sessions.caller_credentials(), PROD)
        client.meta.events.register("before-send.securityhub.BatchImportFindings", answer)
        report = import_findings(items, lambda account, region: client, sleep=lambda s: None)
    finally:
        sessions.close()
    assert sent == [3, 3, 3] and report.calls == 1 and report.imported == 3 and not report.failed


def test_each_accounts_findings_go_through_its_own_credentials() -> None:
    """integrations.import_findings: the caller's findings with its own credentials (role None), every other
    account's through the import role, and each client only ever receives findings whose AwsAccountId is that
    account (BatchImportFindings with the default product accepts nothing else)."""
    from botocore.stub import Stubber

    from audit_bedrock.integrations import DEFAULT_IMPORT_ROLE, ImportTarget
    from audit_bedrock.integrations import import_findings as import_result

    result = sample_result()
    expected = asff_findings(result, context())
    by_target: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in expected:
        by_target.setdefault((item["AwsAccountId"], item["Region"]), []).append(item)
    asked: list[tuple[str, str, str | None]] = []
    stubs: list[Stubber] = []

    def make_client(account: str, region: str, role: str | None) -> Any:
        asked.append((account, region, role))
        client = boto3.client("securityhub", region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        sent = by_target[(account, region)]
        assert {f["AwsAccountId"] for f in sent} == {account}
        stub.add_response("batch_import_findings", _ok([f["Id"] for f in sent]), {"Findings": sent})
        stub.activate()
        stubs.append(stub)
        return client

    report = import_result(result, context(), ImportTarget(PROD, DEFAULT_IMPORT_ROLE), make_client)
    for stub in stubs:
        stub.assert_no_pending_responses()
    assert report.imported == len(expected) and not report.failed
    assert sorted(asked) == sorted((a, r, None if a == PROD else DEFAULT_IMPORT_ROLE) for a, r in by_target)


@mock_aws
def test_import_with_sessions_uses_the_importing_identitys_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """A --merge or --from-facts run may import from another account than the scan's caller: the findings of the
    account the credentials belong to (STS GetCallerIdentity) go with them, every other account's via its role."""
    from audit_bedrock.aws.clients import Sessions
    from audit_bedrock.integrations import import_with_sessions

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    me = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]  # moto's default account
    result = sample_result()
    mine = tuple(replace(f, account_id=me) for f in result.findings if f.account_id == PROD)
    others = tuple(f for f in result.findings if f.account_id == DEV)
    result = replace(result, findings=mine + others, fixed=(),
                     meta=replace(result.meta, caller_account=PROD))  # the scan's caller was another account
    entered: list[str] = []
    original = Sessions.assume

    def assume(self: Sessions, account_id: str, *args: Any) -> Any:
        entered.append(account_id)
        return original(self, account_id, *args)

    monkeypatch.setattr(Sessions, "assume", assume)
    for region in {f.region or "us-east-1" for f in result.findings}:
        boto3.client("securityhub", region_name=region).enable_security_hub()
    report = import_with_sessions(result, context(), None, None, None, None)
    assert entered == [DEV]  # never an AssumeRole into its own account, nor into the scan caller's
    assert report.imported == len(mine) + len(others) and not report.failed
