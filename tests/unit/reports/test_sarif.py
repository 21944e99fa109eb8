"""SARIF renderer: parsed output validated against the SARIF 2.1.0 schema and GitHub code scanning's ingestion rules.

The schema is the OASIS one (sarif-schema-2.1.0.json, errata01), vendored in tests/support so the tests need nothing
outside the repository.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from audit_bedrock.constants import SEVERITY_RANK
from audit_bedrock.model import AccountOutcome, ScanResult
from audit_bedrock.reports import FORMATS, renderer
from audit_bedrock.reports import sarif as sarif_module
from audit_bedrock.reports.sarif import SECURITY_SEVERITY, automation_id, home_page, scope_key, to_sarif
from tests.conftest import load_json, run_cli, validate_findings
from tests.support import shared_demo_estate
from tests.support.report_samples import CATALOG, DEV, EVIL, HOSTILE, PROD, context, finding, sample_result

LEVELS = {"error", "warning", "note", "none"}
SARIF_SCHEMA = json.loads((Path(__file__).parents[2] / "support" / "sarif-schema-2.1.0.json").read_text())
_SCHEMA = jsonschema.validators.validator_for(SARIF_SCHEMA)(SARIF_SCHEMA,
                                                              format_checker=jsonschema.FormatChecker())


def assert_schema_valid(doc: dict[str, Any]) -> None:
    """The OASIS SARIF 2.1.0 schema (draft-04), with its formats (uri, date-time) checked where jsonschema can."""
    errors = sorted(_SCHEMA.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


def assert_github_rules(doc: dict[str, Any]) -> None:
    """The SARIF schema, then the structural rules GitHub code scanning applies when it ingests a SARIF upload."""
    assert_schema_valid(doc)
    assert doc["version"] == "2.1.0"
    assert "$schema" in doc
    assert 1 <= len(doc["runs"]) <= 20
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert driver["name"]
        rules = driver.get("rules", [])
        assert len(rules) <= 25_000
        ids = [r["id"] for r in rules]
        assert len(ids) == len(set(ids)), "duplicate rule ids"
        assert run["automationDetails"]["id"]
        assert run["automationDetails"]["id"].endswith("/")
        for rule in rules:
            assert rule["shortDescription"]["text"]
            assert rule["fullDescription"]["text"]
            assert rule["help"]["text"] and rule["help"]["markdown"]
            assert rule["helpUri"].startswith("https://") if "helpUri" in rule else True
            props = rule["properties"]
            assert "security" in props["tags"]
            assert len(props["tags"]) <= 20
            assert isinstance(props["security-severity"], str)
            assert 0.0 <= float(props["security-severity"]) <= 10.0
        results = run["results"]
        assert len(results) <= 25_000
        for res in results:
            assert res["ruleId"] in ids
            assert ids[res["ruleIndex"]] == res["ruleId"]
            assert res["level"] in LEVELS
            assert res["message"]["text"]
            assert res["partialFingerprints"]["primaryLocationLineHash"]
            assert 1 <= len(res["locations"]) <= 1000
            phys = res["locations"][0]["physicalLocation"]
            uri = phys["artifactLocation"]["uri"]
            assert ":" not in uri and not uri.startswith("/"), f"not a relative path: {uri}"
            assert "uriBaseId" not in phys["artifactLocation"] or phys["artifactLocation"]["uriBaseId"]
            assert phys["region"]["startLine"] >= 1
            assert res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
    data = json.dumps(doc).encode()
    assert len(gzip.compress(data)) <= 10 * 1024 * 1024


def sarif(result: ScanResult, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(to_sarif(result, context(), **kw))
    return doc


def results_by_rule(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in doc["runs"][0]["results"]:
        out.setdefault(r["ruleId"], []).append(r)
    return out


def test_registered_as_findings_sarif() -> None:
    assert FORMATS["sarif"][0] == "findings.sarif"
    doc = json.loads(renderer("sarif")(sample_result(), context()))
    assert_github_rules(doc)


def test_sample_passes_github_rules_and_keeps_every_finding() -> None:
    result = sample_result()
    doc = sarif(result)
    assert_github_rules(doc)
    run = doc["runs"][0]
    assert [r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]] \
        == [f.id for f in sorted(result.findings, key=lambda f: (SEVERITY_RANK[f.severity], f.status != "open",
                                                                   *f.sort_key()[1:], f.id))]
    # one rule per catalog id that has results, and only those
    assert sorted(r["id"] for r in run["tool"]["driver"]["rules"]) == sorted({f.rule_id for f in result.findings})
    assert run["properties"]["truncated"] is False
    assert run["invocations"][0]["executionSuccessful"] is False  # the sample is incomplete


@pytest.mark.parametrize(("severity", "level", "score"), [
    pytest.param("critical", "error", "9.5", id="critical"),
    pytest.param("high", "error", "8.0", id="high"),
    pytest.param("medium", "warning", "5.5", id="medium"),
    pytest.param("low", "note", "3.0", id="low"),
    pytest.param("info", "note", "1.0", id="info"),
])
def test_severity_maps_to_level_and_security_severity(severity: str, level: str, score: str) -> None:
    f = finding("BIL-001", severity, PROD, "p", "us-east-1", "arn:aws:bedrock:us-east-1:111111111111:x")
    doc = sarif(replace(sample_result(), findings=(f,)))
    res = doc["runs"][0]["results"][0]
    rule = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert res["level"] == level
    assert rule["properties"]["security-severity"] == score == SECURITY_SEVERITY[severity]


def test_rule_security_severity_is_its_worst_result() -> None:
    doc = sarif(sample_result())
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    # BIL-004 fires at high (PROD) and medium (DEV, suppressed): the rule is scored high
    assert rules["BIL-004"]["properties"]["security-severity"] == "8.0"
    assert rules["BIL-004"]["properties"]["default-severity"] == "medium"
    assert rules["BIL-010"]["properties"]["security-severity"] == "3.0"


@pytest.mark.parametrize(("rule_id", "region", "uri"), [
    pytest.param("BIL-001", "us-west-2", f"aws/{EVIL}/us-west-2/bedrock-invocation-logging", id="region-scope"),
    pytest.param("BIL-010", None, f"aws/{EVIL}/global/bedrock-invocation-logging", id="account-scope-global"),
])
def test_location_is_relative_pseudo_path_and_arn_is_logical(rule_id: str, region: str | None, uri: str) -> None:
    result = sample_result()
    f = next(f for f in result.findings if f.rule_id == rule_id and f.account_id == EVIL)
    res = next(r for r in sarif(result)["runs"][0]["results"] if r["properties"]["findingId"] == f.id)
    loc = res["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == uri
    assert loc["physicalLocation"]["region"]["startLine"] == 1
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == f.resource
    assert res["properties"]["resource"] == f.resource
    assert res["properties"]["accountName"] == HOSTILE
    assert res["properties"]["region"] == region


def test_fingerprints_are_stable_across_runs() -> None:
    first = sample_result()
    later = replace(first, meta=replace(first.meta, started_at="2027-05-05T00:00:00Z", api_calls=7),
                    findings=tuple(replace(f, message=f.message + " (reworded)") for f in first.findings))
    def prints(result: ScanResult) -> dict[str, Any]:
        return {r["ruleId"] + r["properties"]["resource"]: r["partialFingerprints"]
                for r in sarif(result)["runs"][0]["results"]}

    a, b = prints(first), prints(later)
    assert a == b
    assert len({p["primaryLocationLineHash"] for p in a.values()}) == len(a)


def test_suppressed_finding_carries_external_suppression() -> None:
    doc = sarif(sample_result())
    sup = [r for r in doc["runs"][0]["results"] if "suppressions" in r]
    assert len(sup) == 1
    entry = sup[0]["suppressions"][0]
    assert entry["kind"] == "external"
    assert entry["justification"] == "dev <em>sandbox</em>, accepted risk"
    assert entry["properties"]["expires"] == "2099-12-31"
    assert sup[0]["properties"]["accountId"] == DEV
    open_results = [r for r in doc["runs"][0]["results"] if "suppressions" not in r]
    assert all(r["properties"]["status"] == "open" for r in open_results)


def test_rule_metadata_comes_from_the_catalog() -> None:
    rules = {r["id"]: r for r in sarif(sample_result())["runs"][0]["tool"]["driver"]["rules"]}
    bil3 = rules["BIL-003"]
    assert bil3["shortDescription"]["text"].startswith(CATALOG["BIL-003"]["title"])
    assert CATALOG["BIL-003"]["remediation"] in bil3["help"]["text"]
    assert CATALOG["BIL-003"]["remediation"] in bil3["help"]["markdown"]
    assert bil3["helpUri"] == "https://docs.aws.amazon.com/bedrock/latest/APIReference/"  # javascript: skipped
    assert "javascript:" not in json.dumps(bil3)
    assert "helpUri" not in rules["BIL-012"]  # no reference at all
    assert rules["BIL-001"]["name"] == "ModelInvocationLoggingIsDisabled"


@pytest.mark.parametrize(("accounts", "expected"), [
    pytest.param(None, "audit-bedrock/o-abc123/", id="organization"),
    pytest.param((AccountOutcome(DEV, "d", "Root", "scanned"),), f"audit-bedrock/{DEV}/", id="single-account"),
])
def test_automation_details_id(accounts: tuple[AccountOutcome, ...] | None, expected: str) -> None:
    result = sample_result()
    if accounts is not None:
        result = replace(result, meta=replace(result.meta, accounts=accounts))
    assert sarif(result)["runs"][0]["automationDetails"]["id"] == expected


def _many(n: int) -> ScanResult:
    sevs = ["low", "critical", "medium", "info", "high"]
    findings = tuple(finding("BIL-001", sevs[i % 5], PROD, "p", "us-east-1",
                             f"arn:aws:bedrock:us-east-1:111111111111:resource-{i:05d}",
                             message="x" * 200 + str(i)) for i in range(n))
    return replace(sample_result(), findings=findings)


def test_result_count_limit_keeps_the_most_severe() -> None:
    doc = sarif(_many(50), max_results=12)
    run = doc["runs"][0]
    assert_github_rules(doc)
    assert len(run["results"]) == 12
    assert [r["properties"]["severity"] for r in run["results"]] == ["critical"] * 10 + ["high"] * 2
    assert run["properties"]["omittedFindings"] == 38 and run["properties"]["truncated"] is True
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("38 finding(s) were left out" in n["message"]["text"] for n in notes)


def test_gzip_size_limit_keeps_the_most_severe() -> None:
    limit = 6_000
    data = to_sarif(_many(400), context(), max_gzip_bytes=limit)
    assert len(gzip.compress(data, mtime=0)) <= limit
    run = json.loads(data)["runs"][0]
    kept = run["results"]
    assert 0 < len(kept) < 400
    ranks = [SEVERITY_RANK[r["properties"]["severity"]] for r in kept]
    assert ranks == sorted(ranks) and ranks[0] == 0
    assert run["properties"]["omittedFindings"] == 400 - len(kept)
    assert "gzipped" in run["properties"]["truncationReason"]
    # one more result would not have fitted (the same document, truncation note included, with one more result)
    from audit_bedrock.reports.sarif import _document, _encode, _ordered
    result = _many(400)
    ordered = _ordered(result.findings)
    bigger = _encode(_document(result, context(), ordered[:len(kept) + 1], 400 - len(kept) - 1,
                               run["properties"]["truncationReason"]))
    assert len(gzip.compress(bigger, mtime=0)) > limit


@pytest.mark.slow
def test_demo_estate_sarif_passes_github_rules(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    endpoint = shared_demo_estate(request.config).endpoint
    out = tmp_path / "out"
    proc = run_cli(["--org", "--regions", "us-east-1,us-west-2,eu-west-1,me-south-1", "--output-dir", str(out)],
                   endpoint)
    assert proc.returncode == 1, proc.stderr
    assert {p.name for p in out.iterdir()} == {"findings.json", "report.html", "findings.sarif"}
    doc = load_json(out / "findings.sarif")
    assert_github_rules(doc)
    findings = load_json(out / "findings.json")
    validate_findings(findings)
    run = doc["runs"][0]
    assert run["automationDetails"]["id"] == f"audit-bedrock/{findings['scan']['organization_id']}/"
    assert sorted(r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]) \
        == sorted(f["id"] for f in findings["findings"])
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {f["rule_id"] for f in findings["findings"]}
    for res in run["results"]:
        f = next(f for f in findings["findings"] if f["id"] == res["partialFingerprints"]["primaryLocationLineHash"])
        region = f["region"] or "global"
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] \
            == f"aws/{f['account_id']}/{region}/bedrock-invocation-logging"
        assert res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == f["resource"]


def test_message_text_cannot_carry_a_live_link() -> None:
    """issue 12: AWS-controlled values (a key prefix) in a message are escaped as SARIF plain text requires."""
    first = sample_result()
    evil = replace(first.findings[0], message="prefix [Fix it now](https://evil.example) under \\ logs")
    doc = sarif(replace(first, findings=(evil, *first.findings[1:])))
    texts = [r["message"]["text"] for r in doc["runs"][0]["results"] if r["properties"]["findingId"] == evil.id]
    assert texts == ["prefix \\[Fix it now\\](https://evil.example) under \\\\ logs."]


def test_not_rechecked_findings_stay_open_in_sarif() -> None:
    """issue 12: a baseline finding this run did not read again is a result (never closed), marked unchanged."""
    first = sample_result()
    carried = replace(first.findings[0], id="f" * 32, properties={"not_rechecked": "the account was not scanned"})
    doc = sarif(replace(first, not_rechecked=(carried,)))
    run = doc["runs"][0]
    mine = [r for r in run["results"] if r["partialFingerprints"]["primaryLocationLineHash"] == carried.id]
    assert len(mine) == 1 and mine[0]["baselineState"] == "unchanged" and mine[0]["properties"]["notRechecked"]
    assert run["properties"]["notRecheckedFindings"] == 1
    assert_github_rules(doc)


def test_schema_check_can_fail() -> None:
    doc = sarif(sample_result())
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError, match="level"):
        assert_schema_valid(doc)


# --- tool.driver.informationUri: the project's real home page, or nothing --------------------------------------

class Meta:
    """The part of importlib.metadata's PackageMetadata that home_page reads: get_all (core metadata fields)."""

    def __init__(self, urls: list[str], home: str | None = None) -> None:
        self.urls, self.home = urls, home

    def get_all(self, name: str) -> list[str] | None:
        got = {"Project-URL": self.urls, "Home-page": [self.home] if self.home else []}.get(name)
        return got or None


@pytest.mark.parametrize(("meta", "expected"), [
    pytest.param(None, None, id="not-installed"),
    pytest.param(Meta([]), None, id="no-urls"),
    pytest.param(Meta(["Homepage, https://example.org/audit-bedrock"]), "https://example.org/audit-bedrock",
                 id="homepage"),
    pytest.param(Meta(["Issues, https://example.org/i", "Source Code, https://example.org/src"]),
                 "https://example.org/src", id="source-label-normalised"),
    pytest.param(Meta(["Documentation, https://example.org/doc", "Home, https://example.org/"]),
                 "https://example.org/", id="home-before-documentation"),
    pytest.param(Meta(["Homepage, http://example.org/"]), None, id="not-https"),
    pytest.param(Meta([], home="https://example.org/legacy"), "https://example.org/legacy", id="legacy-home-page"),
])
def test_home_page_from_core_metadata(meta: Any, expected: str | None) -> None:
    assert home_page(meta) == expected


def test_information_uri_is_the_installed_projects_or_omitted() -> None:
    """pyproject.toml declares no [project.urls]: the field is omitted, never a placeholder."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]
    declared = next((u for k, u in (project.get("urls") or {}).items()
                     if k.lower().replace(" ", "") in sarif_module.HOME_LABELS and u.startswith("https://")), None)
    driver = sarif(sample_result())["runs"][0]["tool"]["driver"]
    assert driver.get("informationUri") == declared == sarif_module.information_uri()


@pytest.mark.parametrize("home", [pytest.param(None, id="omitted"),
                                  pytest.param("https://example.org/audit-bedrock", id="present")])
def test_information_uri_renders_schema_valid(monkeypatch: pytest.MonkeyPatch, home: str | None) -> None:
    monkeypatch.setattr(sarif_module, "information_uri", lambda: home)
    doc = sarif(sample_result())
    assert_github_rules(doc)
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver.get("informationUri") == home
    assert list(driver)[-1] == "rules"


# --- automationDetails.id: one category per scanned scope -------------------------------------------------------

ORG = "o-abc123"
SCOPE_CASES: list[Any] = [
    pytest.param({}, None, f"audit-bedrock/{ORG}/", id="whole-org"),
    pytest.param({"ous": ["ou-b-2", "ou-a-1"]}, None, f"audit-bedrock/{ORG}/ou-a-1+ou-b-2/", id="ous-sorted"),
    pytest.param({"ous": ["ou-a-1", "ou-b-2", "ou-a-1"]}, None, f"audit-bedrock/{ORG}/ou-a-1+ou-b-2/",
                 id="ous-deduplicated"),
    pytest.param({"accounts": ["222222222222", "111111111111"]}, None,
                 f"audit-bedrock/{ORG}/accounts-"
                 f"{hashlib.sha256(b'111111111111,222222222222').hexdigest()[:12]}/", id="accounts-digest"),
    pytest.param({"exclude": ["111111111111"]}, None,
                 f"audit-bedrock/{ORG}/excluding-{hashlib.sha256(b'111111111111').hexdigest()[:12]}/",
                 id="excluding-digest"),
    pytest.param({"ous": ["ou-a-1"], "exclude": ["111111111111"]}, None,
                 f"audit-bedrock/{ORG}/ou-a-1+excluding-{hashlib.sha256(b'111111111111').hexdigest()[:12]}/",
                 id="ou-minus-accounts"),
    pytest.param({}, (2, 4), f"audit-bedrock/{ORG}/shard-2-of-4/", id="shard"),
    pytest.param({"ous": ["ou-a-1"]}, (1, 2), f"audit-bedrock/{ORG}/ou-a-1/shard-1-of-2/", id="ou-shard"),
]


@pytest.mark.parametrize(("kw", "shard", "expected"), SCOPE_CASES)
def test_category_per_scope(kw: dict[str, Any], shard: tuple[int, int] | None, expected: str) -> None:
    result = sample_result()
    result = replace(result, meta=replace(result.meta, shard=shard))
    ctx = replace(context(), scope=scope_key(**kw))
    doc = json.loads(to_sarif(result, ctx))
    assert_github_rules(doc)
    assert doc["runs"][0]["automationDetails"]["id"] == expected


def test_every_scope_gets_a_different_category() -> None:
    """A subset's upload never shares a category with the whole organization or another subset."""
    result = sample_result()
    ids = [automation_id(replace(result, meta=replace(result.meta, shard=p.values[1])), scope_key(**p.values[0]))
           for p in SCOPE_CASES if p.id != "ous-deduplicated"]
    assert len(ids) == len(set(ids))


def test_same_subset_same_category_whatever_the_order() -> None:
    a = scope_key(accounts=["111111111111", "222222222222"], exclude=["3", "4"])
    b = scope_key(accounts=["222222222222", "111111111111", "111111111111"], exclude=["4", "3"])
    assert a == b


def test_one_scanned_account_keeps_its_own_category() -> None:
    result = sample_result()
    one = replace(result, meta=replace(result.meta, accounts=result.meta.accounts[:1]))
    assert automation_id(one, scope_key(accounts=["111111111111"])) == f"audit-bedrock/{PROD}/"
