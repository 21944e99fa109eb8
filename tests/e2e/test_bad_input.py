"""Bad input, as a table: each case exits 2, names the file (or flag) and the problem, prints no traceback,
and writes nothing (the output folder is not created, no facts file appears)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit_bedrock.cli import main
from audit_bedrock.engine import default_rules_dir
from audit_bedrock.facts import FACTS_VERSION
from audit_bedrock.inputs import MAX_INPUT_BYTES
from tests.conftest import run_cli

# Any case that wrongly got as far as scanning would hit this closed port and fail differently.
DEAD_ENDPOINT = "http://127.0.0.1:9"
GOOD_FINDING = {"id": "0" * 32, "rule_id": "BIL-001", "severity": "high", "title": "t", "message": "m",
                "account_id": "111111111111", "account_name": "", "region": "us-east-1", "resource": "r",
                "remediation": "x", "status": "open", "baseline": "new", "properties": {}}


@dataclass(frozen=True)
class Case:
    """Write `files` under tmp, run with `args` ({tmp} is replaced), expect each of `expect` on stderr."""

    files: dict[str, str | bytes]
    args: list[str]
    expect: list[str]


def rule_text(**changes: object) -> str:
    """A valid rule (BIL-001 renamed to TST-001) with top-level keys changed (None removes a key)."""
    import yaml

    data = yaml.safe_load((default_rules_dir() / "BIL-001.yaml").read_text())
    data["id"] = "TST-001"
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    return str(yaml.safe_dump(data, sort_keys=False))


def facts_text(accounts: object = None, scan: object = None, **top: object) -> str:
    doc = {"format": "audit-bedrock-facts", "version": FACTS_VERSION,
           "scan": {"regions": ["us-east-1"], "caller_account": "111111111111"} if scan is None else scan,
           "accounts": [] if accounts is None else accounts, **top}
    return json.dumps(doc)


def findings_doc(findings: object = (), **top: object) -> dict[str, object]:
    """A findings.json as audit-bedrock writes it (one scanned account), its findings replaced."""
    from audit_bedrock import __version__
    from audit_bedrock.model import AccountOutcome, ScanMeta, ScanResult
    from audit_bedrock.reports.json_report import to_document

    meta = ScanMeta("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", None, "111111111111", ("us-east-1",),
                    (AccountOutcome("111111111111", "", "", "scanned"),), 1)
    doc: dict[str, object] = to_document(ScanResult(meta, (), ()), __version__)
    return {**doc, "findings": list(findings) if isinstance(findings, list | tuple) else findings, **top}


def baseline_text(findings: object, version: object = 1, **top: object) -> str:
    return json.dumps({**findings_doc(findings, **top), "schema_version": version})


CFG = ["--config", "{tmp}/config.yaml"]
# The billion-laughs shape: nine levels of nine aliases, 2 KB that would expand to 9**9 strings.
ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "regions: *i\n"
RULES = ["--rules-dir", "{tmp}/rules"]
FACTS = ["--from-facts", "{tmp}/facts.json"]
BASE = ["--baseline", "{tmp}/baseline.json", "--from-facts", "{tmp}/ok-facts.json"]
OK_FACTS = {"ok-facts.json": facts_text()}
MERGE = ["--merge", "{tmp}/merge.json"]
CFG_PATH = "{tmp}/config.yaml"

CASES = [
    # --- config files ---
    pytest.param(Case({"config.yaml": "regions: [us-east-1\nrole_name: x\n"}, CFG,
                      [CFG_PATH, "invalid YAML", "line "]), id="config-malformed-yaml"),
    pytest.param(Case({"config.yaml": "role_name: a\n\trole_name: b\n"}, CFG,
                      [CFG_PATH, "invalid YAML"]), id="config-tab-indent"),
    pytest.param(Case({"config.yaml": "- us-east-1\n- eu-west-1\n"}, CFG,
                      [CFG_PATH, "must be a mapping"]), id="config-not-a-mapping"),
    pytest.param(Case({"config.yaml": "regoins: [us-east-1]\n"}, CFG,
                      [CFG_PATH, "line 1", "'regoins'", "unknown key", "did you mean 'regions'"]),
                 id="config-unknown-key-regoins"),
    pytest.param(Case({"config.yaml": "fail_on: high\nsuppresions: []\n"}, CFG,
                      [CFG_PATH, "line 2", "'suppresions'", "did you mean 'suppressions'"]),
                 id="config-unknown-key-suppresions"),
    pytest.param(Case({"config.yaml": "suppressions:\n  - rule: BIL-001\n    account: '123456789012'\n"
                                      "    reson: accepted risk\n"}, CFG,
                      [CFG_PATH, "line 4", "'suppressions[0].reson'", "did you mean 'reason'"]),
                 id="config-unknown-nested-reson"),
    pytest.param(Case({"config.yaml": "approved_destinations:\n  bucket: [logs]\n"}, CFG,
                      [CFG_PATH, "'approved_destinations.bucket'", "did you mean 'buckets'"]),
                 id="config-unknown-nested-bucket"),
    pytest.param(Case({"config.yaml": "max_workers: many\n"}, CFG,
                      [CFG_PATH, "'max_workers'", "expected an integer, got str"]), id="config-wrong-type-int"),
    pytest.param(Case({"config.yaml": "max_workers: true\n"}, CFG,
                      [CFG_PATH, "'max_workers'", "expected an integer, got bool"]), id="config-wrong-type-bool"),
    pytest.param(Case({"config.yaml": "regions: 5\n"}, CFG,
                      [CFG_PATH, "'regions'", "expected a list"]), id="config-wrong-type-regions"),
    pytest.param(Case({"config.yaml": "required_data_types: text\n"}, CFG,
                      [CFG_PATH, "'required_data_types'", "expected a list"]), id="config-wrong-type-scalar"),
    pytest.param(Case({"config.yaml": "suppressions: {rule: BIL-001}\n"}, CFG,
                      [CFG_PATH, "'suppressions'", "expected a list"]), id="config-wrong-type-mapping"),
    pytest.param(Case({"config.yaml": "role_name: ''\n"}, CFG,
                      [CFG_PATH, "'role_name'", "non-empty string"]), id="config-empty-string"),
    pytest.param(Case({"config.yaml": "min_retention_days: 0\n"}, CFG,
                      [CFG_PATH, "'min_retention_days'", "between"]), id="config-out-of-range"),
    pytest.param(Case({"config.yaml": "fail_on: severe\n"}, CFG,
                      [CFG_PATH, "'fail_on'", "must be one of"]), id="config-bad-enum"),
    pytest.param(Case({"config.yaml": "required_data_types: [text, txt]\n"}, CFG,
                      [CFG_PATH, "'required_data_types[1]'", "did you mean 'text'"]), id="config-bad-data-type"),
    pytest.param(Case({"config.yaml": "regions: [us-east-1, us-east-7]\n"}, CFG,
                      [CFG_PATH, "'regions'", "unknown region 'us-east-7'", "did you mean"]),
                 id="config-bad-region"),
    pytest.param(Case({"config.yaml": "regions: []\n"}, CFG,
                      [CFG_PATH, "'regions'", "at least one region"]), id="config-no-region"),
    pytest.param(Case({"config.yaml": "suppressions:\n  - {rule: BIL-001, account: '123456789012', "
                                      "region: eu-wst-1, reason: r}\n"}, CFG,
                      [CFG_PATH, "'suppressions[0].region'", "unknown region 'eu-wst-1'", "did you mean 'eu-west-1'"]),
                 id="config-bad-suppression-region"),
    pytest.param(Case({"config.yaml": "suppressions:\n  - {rule: BIL-001, account: '12345', reason: r}\n"}, CFG,
                      [CFG_PATH, "'suppressions[0].account'", "'12345' is not a 12-digit AWS account id"]),
                 id="config-bad-account-id"),
    pytest.param(Case({"config.yaml": "approved_destinations:\n  accounts: [abc]\n"}, CFG,
                      [CFG_PATH, "'approved_destinations.accounts[0]'", "not a 12-digit"]),
                 id="config-bad-approved-account"),
    pytest.param(Case({"config.yaml": "suppressions:\n  - {rule: BIL-001, account: '123456789012', reason: r,"
                                      " expires: next week}\n"}, CFG,
                      [CFG_PATH, "'suppressions[0].expires'", "expected a date"]), id="config-bad-date"),
    pytest.param(Case({"config.yaml": "suppressions:\n  - {rule: BIL-001, account: '123456789012', reason: r,"
                                      " expires: 2024-13-45}\n"}, CFG,
                      [CFG_PATH, "expires", "2024-13-45"]), id="config-impossible-date"),
    pytest.param(Case({"config.yaml": "suppressions:\n  - {rule: BIL-001, account: '123456789012'}\n"}, CFG,
                      [CFG_PATH, "'suppressions[0]'", "missing required key 'reason'"]),
                 id="config-suppression-missing-key"),
    pytest.param(Case({"config.yaml": "severity_overrides: {BIL-999: low}\n"}, CFG,
                      [CFG_PATH, "BIL-999", "no such rule"]), id="config-override-unknown-rule"),
    pytest.param(Case({"config.yaml": "severity_overrides: {BIL-001: severe}\n"}, CFG,
                      [CFG_PATH, "'severity_overrides.BIL-001'", "must be one of"]), id="config-override-bad-severity"),
    pytest.param(Case({"config.yaml": "disabled_rules: [BIL-099]\n"}, CFG,
                      [CFG_PATH, "disabled_rules", "no such rule 'BIL-099'"]), id="config-disable-unknown-rule"),
    # issue 12: SCAN-003 reports every rule that could not be evaluated; disabling it would hide them
    pytest.param(Case({"config.yaml": "disabled_rules: [SCAN-003]\n"}, CFG,
                      [CFG_PATH, "'disabled_rules'", "SCAN-003 cannot be disabled"]), id="config-disable-scan003"),
    # issue 12: YAML aliases are refused before anything is constructed (a bomb expands to gigabytes)
    pytest.param(Case({"config.yaml": ALIAS_BOMB}, CFG, [CFG_PATH, "line 1", "anchor 'a' refused"]),
                 id="config-alias-bomb"),
    pytest.param(Case({"config.yaml": "regions: &a [*a]\n"}, CFG, [CFG_PATH, "anchor 'a' refused"]),
                 id="config-recursive-alias"),
    pytest.param(Case({"rules/r.yaml": "id: TST-001\ntitle: &t hello\nmessage: *t\n"}, RULES,
                      ["{tmp}/rules/r.yaml", "line 2", "refused"]), id="rule-alias"),
    pytest.param(Case({"config.yaml": b"role_name: \xff\xfe\xfa\n"}, CFG,
                      [CFG_PATH, "cannot read config file"]), id="config-not-utf8"),
    pytest.param(Case({"config.yaml": "rule_paths: [no-such-pack]\n"}, CFG,
                      ["no-such-pack", "rules directory not found"]), id="config-rule-path-missing"),
    # Tests run as root, where chmod 000 does not stop a read: "unreadable" is a folder or a missing file.
    pytest.param(Case({"config.yaml/.keep": ""}, CFG, [CFG_PATH, "cannot read config file"]),
                 id="config-is-a-directory"),
    pytest.param(Case({}, CFG, [CFG_PATH, "not found"]), id="config-missing"),
    # --- rule packs ---
    pytest.param(Case({"rules/dup.yaml": (default_rules_dir() / "BIL-001.yaml").read_text()}, RULES,
                      ["{tmp}/rules/dup.yaml", "BIL-001", "duplicate rule id"]), id="rule-duplicate-id"),
    pytest.param(Case({"rules/r.yaml": rule_text(condition="fact.logging.[")}, RULES,
                      ["{tmp}/rules/r.yaml", "TST-001", "'condition'", "invalid JMESPath"]), id="rule-bad-jmespath"),
    pytest.param(Case({"rules/r.yaml": rule_text(vars={"x": "length("})}, RULES,
                      ["{tmp}/rules/r.yaml", "'vars.x'", "invalid JMESPath"]), id="rule-bad-jmespath-var"),
    pytest.param(Case({"rules/r.yaml": rule_text(remediation=None)}, RULES,
                      ["{tmp}/rules/r.yaml", "TST-001", "'remediation'", "missing required key"]),
                 id="rule-missing-field"),
    pytest.param(Case({"rules/r.yaml": rule_text(conditon="`true`")}, RULES,
                      ["{tmp}/rules/r.yaml", "'conditon'", "did you mean 'condition'"]), id="rule-unknown-key"),
    pytest.param(Case({"rules/r.yaml": rule_text(severity="urgent")}, RULES,
                      ["{tmp}/rules/r.yaml", "'severity'", "must be one of"]), id="rule-bad-severity"),
    pytest.param(Case({"rules/r.yaml": rule_text(message="see {nowhere}")}, RULES,
                      ["{tmp}/rules/r.yaml", "'{nowhere}'", "no entry in 'vars'"]), id="rule-unknown-placeholder"),
    pytest.param(Case({"rules/r.yaml": rule_text(id="bad id")}, RULES,
                      ["{tmp}/rules/r.yaml", "'id'", "not a rule id"]), id="rule-bad-id"),
    pytest.param(Case({"rules/r.yaml": rule_text(examples={"fire": []})}, RULES,
                      ["{tmp}/rules/r.yaml", "'examples.fire'", "non-empty list"]), id="rule-no-examples"),
    # an unknown fact in each key that holds expressions: exit 2 naming the file, the rule, the key and the path
    pytest.param(Case({"rules/r.yaml": rule_text(requires=["fact.logging", "fact.loging.enabled"])}, RULES,
                      ["{tmp}/rules/r.yaml", "TST-001", "'requires[1]'", "unknown fact 'fact.loging'",
                       "did you mean 'fact.logging'"]), id="rule-unknown-fact-requires"),
    pytest.param(Case({"rules/r.yaml": rule_text(condition="fact.logging.enabld == `false`")}, RULES,
                      ["{tmp}/rules/r.yaml", "TST-001", "'condition'", "unknown fact 'fact.logging.enabld'",
                       "did you mean 'fact.logging.enabled'"]), id="rule-unknown-fact-condition"),
    pytest.param(Case({"rules/r.yaml": rule_text(resource="fact.regoin")}, RULES,
                      ["{tmp}/rules/r.yaml", "'resource'", "unknown fact 'fact.regoin'", "did you mean 'fact.region'"]),
                 id="rule-unknown-fact-resource"),
    pytest.param(Case({"rules/r.yaml": rule_text(vars={"usage_note": "fact.usage.invocation"})}, RULES,
                      ["{tmp}/rules/r.yaml", "'vars.usage_note'", "unknown fact 'fact.usage.invocation'",
                       "did you mean 'fact.usage.invocations'"]), id="rule-unknown-fact-vars"),
    pytest.param(Case({"rules/r.yaml": rule_text(properties={"roles": "account.iam.role"})}, RULES,
                      ["{tmp}/rules/r.yaml", "'properties.roles'", "unknown fact 'account.iam.role'",
                       "did you mean 'account.iam.roles'"]), id="rule-unknown-fact-properties"),
    pytest.param(Case({"rules/r.yaml": rule_text(for_each="fact.bucket")}, RULES,
                      ["{tmp}/rules/r.yaml", "'for_each'", "unknown fact 'fact.bucket'",
                       "did you mean 'fact.buckets'"]),
                 id="rule-unknown-fact-for-each"),
    pytest.param(Case({"rules/r.yaml": rule_text(for_each="fact.buckets", condition="item.exist == `false`")}, RULES,
                      ["{tmp}/rules/r.yaml", "'condition'", "unknown fact 'item.exist'", "did you mean 'item.exists'"]),
                 id="rule-unknown-fact-item"),
    pytest.param(Case({"rules/r.yaml": rule_text(severity_when=[{"if": "fact.logging.data_types.imag",
                                                                 "severity": "high"}])}, RULES,
                      ["{tmp}/rules/r.yaml", "'severity_when[0].if'", "unknown fact 'fact.logging.data_types.imag'",
                       "did you mean 'fact.logging.data_types.image'"]), id="rule-unknown-fact-severity-when"),
    pytest.param(Case({"rules/r.yaml": rule_text(condition="fact.usage.invocations > params.min_retention_day")},
                      RULES, ["{tmp}/rules/r.yaml", "'condition'", "unknown fact 'params.min_retention_day'",
                              "did you mean 'params.min_retention_days'"]), id="rule-unknown-param"),
    pytest.param(Case({"rules/r.yaml": rule_text(condition="item.exists == `false`")}, RULES,
                      ["{tmp}/rules/r.yaml", "'condition'", "unknown fact 'item'", "only in a rule with for_each"]),
                 id="rule-item-without-for-each"),
    pytest.param(Case({"rules/r.yaml": rule_text(for_each="fact.logging")}, RULES,
                      ["{tmp}/rules/r.yaml", "'for_each'", "does not select a list"]), id="rule-for-each-not-a-list"),
    pytest.param(Case({"rules/r.yaml": "id: TST-001\ntitle: [unclosed\n"}, RULES,
                      ["{tmp}/rules/r.yaml", "invalid YAML"]), id="rule-malformed-yaml"),
    pytest.param(Case({"rules/r.yaml": "just a string\n"}, RULES,
                      ["{tmp}/rules/r.yaml", "one mapping"]), id="rule-not-a-mapping"),
    pytest.param(Case({}, RULES, ["{tmp}/rules", "rules directory not found"]), id="rule-dir-missing"),
    # --- --from-facts ---
    pytest.param(Case({"facts.json": "{not json"}, FACTS, ["{tmp}/facts.json", "corrupt facts file"]),
                 id="facts-not-json"),
    pytest.param(Case({"facts.json": facts_text()[:40]}, FACTS, ["{tmp}/facts.json", "corrupt facts file"]),
                 id="facts-truncated"),
    pytest.param(Case({"facts.json": "[]"}, FACTS, ["{tmp}/facts.json", "not an audit-bedrock facts file"]),
                 id="facts-a-list"),
    pytest.param(Case({"facts.json": json.dumps({"schema_version": 1, "findings": []})}, FACTS,
                      ["{tmp}/facts.json", "not an audit-bedrock facts file"]), id="facts-is-a-findings-file"),
    pytest.param(Case({"facts.json": facts_text(version=FACTS_VERSION + 1)}, FACTS,
                      ["{tmp}/facts.json", f"unsupported facts version {FACTS_VERSION + 1}"]),
                 id="facts-future-version"),
    pytest.param(Case({"facts.json": facts_text(version=0)}, FACTS,
                      ["{tmp}/facts.json", "unsupported facts version 0"]),
                 id="facts-version-0"),
    pytest.param(Case({"facts.json": facts_text(version=True)}, FACTS,
                      ["{tmp}/facts.json", "unsupported facts version True"]), id="facts-version-a-bool"),
    pytest.param(Case({"facts.json": facts_text(accounts={"a": 1})}, FACTS,
                      ["{tmp}/facts.json", "accounts: {'a': 1} is not of type 'array'"]), id="facts-accounts-not-list"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"regions": []}])}, FACTS,
                      ["{tmp}/facts.json", "accounts[0]"]), id="facts-account-without-id"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "scanned",
                                                           "regions": ["us-east-1"]}])}, FACTS,
                      ["{tmp}/facts.json", "accounts[0].regions[0]"]), id="facts-region-not-object"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "scanned",
                                                           "regions": [{"status": "scanned"}]}])}, FACTS,
                      ["{tmp}/facts.json", "accounts[0].regions[0]"]), id="facts-region-without-name"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "happy",
                                                           "regions": []}])}, FACTS,
                      ["{tmp}/facts.json", "accounts[0]", "status"]), id="facts-bad-status"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "not-an-id", "status": "scanned",
                                                           "regions": []}])}, FACTS,
                      ["{tmp}/facts.json", "accounts[0]", "account_id"]), id="facts-bad-account-id"),
    pytest.param(Case({"facts.json": facts_text(scan={"api_calls": "lots", "caller_account": "111111111111"})},
                      FACTS, ["{tmp}/facts.json", "scan.api_calls"]), id="facts-bad-api-calls"),
    pytest.param(Case({"facts.json": facts_text(scan={"regions": ["us-east-1"]})}, FACTS,
                      ["{tmp}/facts.json", "scan.caller_account: missing"]), id="facts-no-caller"),
    pytest.param(Case({"facts.json": b'{"format": "\xff"}'}, FACTS, ["{tmp}/facts.json", "not UTF-8"]),
                 id="facts-not-utf8"),
    pytest.param(Case({"facts.json/.keep": ""}, FACTS, ["{tmp}/facts.json", "cannot read facts file"]),
                 id="facts-is-a-directory"),
    pytest.param(Case({}, FACTS, ["{tmp}/facts.json", "cannot read facts file"]), id="facts-missing"),
    # --- --baseline ---
    pytest.param(Case({"baseline.json": "{", **OK_FACTS}, BASE, ["{tmp}/baseline.json", "corrupt baseline"]),
                 id="baseline-not-json"),
    pytest.param(Case({"baseline.json": baseline_text([], version=2), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "schema_version 1"]), id="baseline-wrong-version"),
    pytest.param(Case({"baseline.json": baseline_text(["x"]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "corrupt baseline"]), id="baseline-finding-not-object"),
    pytest.param(Case({"baseline.json": baseline_text([{k: v for k, v in GOOD_FINDING.items() if k != "id"}]),
                       **OK_FACTS}, BASE, ["{tmp}/baseline.json", "corrupt baseline", "id"]),
                 id="baseline-finding-without-id"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "severity": "urgent"}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "severity"]), id="baseline-bad-severity"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "status": "maybe"}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "status"]), id="baseline-bad-status"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "properties": "oops"}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "findings[0].properties: 'oops' is not of type 'object'"]),
                 id="baseline-bad-properties"),
    pytest.param(Case({"baseline.json": b'{"schema_version": 1, "findings": ["\xfe"]}', **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "not UTF-8"]), id="baseline-not-utf8"),
    pytest.param(Case(OK_FACTS, BASE, ["{tmp}/baseline.json", "cannot read baseline"]), id="baseline-missing"),
    # issue 12: values a report would carry are checked before use, so no report fails the schema
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "message": "\ud800"}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "findings[0]", "message", "lone surrogate"]),
                 id="baseline-lone-surrogate"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "id": "x"}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "findings[0].id: 'x' does not match"]), id="baseline-bad-id"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "region": "Mars"}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "findings[0]", "region"]), id="baseline-bad-region"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "account_name": 7}]), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "findings[0]", "account_name"]), id="baseline-name-not-string"),
    pytest.param(Case({"baseline.json": baseline_text([], not_rechecked={}), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "not_rechecked: {} is not of type 'array'"]),
                 id="baseline-not-rechecked-not-list"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "scanned",
                                                           "account_name": "\udc80", "regions": []}])}, FACTS,
                      ["{tmp}/facts.json", "accounts[0].account_name", "lone surrogate"]),
                 id="facts-lone-surrogate"),
    # issue 12: every input file is checked against its schema before use: the first problem's JSON path
    pytest.param(Case({"baseline.json": json.dumps({"schema_version": 1, "findings": []}), **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "corrupt baseline file", ": missing (a required key)",
                       "reports/findings.schema.json"]), id="schema-baseline-missing-keys"),
    pytest.param(Case({"baseline.json": baseline_text([GOOD_FINDING, {**GOOD_FINDING, "message": 3}]), **OK_FACTS},
                      BASE, ["{tmp}/baseline.json", "findings[1].message: 3 is not of type 'string'"]),
                 id="schema-baseline-wrong-type"),
    pytest.param(Case({"baseline.json": baseline_text([{k: v for k, v in GOOD_FINDING.items() if k != "title"}]),
                       **OK_FACTS}, BASE, ["{tmp}/baseline.json", "findings[0].title: missing"]),
                 id="schema-baseline-missing-key"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "account_id": "1234"}]), **OK_FACTS},
                      BASE, ["{tmp}/baseline.json", "findings[0].account_id: '1234' does not match"]),
                 id="schema-baseline-bad-account-id"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "rule_id": "bil-1"}]), **OK_FACTS},
                      BASE, ["{tmp}/baseline.json", "findings[0].rule_id: 'bil-1' does not match"]),
                 id="schema-baseline-bad-rule-id"),
    pytest.param(Case({"baseline.json": baseline_text([{**GOOD_FINDING, "message": ""}]), **OK_FACTS},
                      BASE, ["{tmp}/baseline.json", "findings[0].message: '' should be non-empty"]),
                 id="schema-baseline-empty-message"),
    pytest.param(Case({"baseline.json": baseline_text([], scan={"caller_account": "x"}), **OK_FACTS},
                      BASE, ["{tmp}/baseline.json", "scan.started_at: missing"]), id="schema-baseline-bad-scan"),
    pytest.param(Case({"baseline.json": "[" * 100_000 + "]" * 100_000, **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "nested too deeply"]), id="baseline-deeply-nested"),
    pytest.param(Case({"baseline.json": "HUGE", **OK_FACTS}, BASE,
                      ["{tmp}/baseline.json", "larger than 1024 MiB"]), id="baseline-huge"),
    pytest.param(Case({"facts.json": "HUGE"}, FACTS, ["{tmp}/facts.json", "larger than 1024 MiB"]), id="facts-huge"),
    pytest.param(Case({"merge.json": "HUGE"}, MERGE, ["{tmp}/merge.json", "larger than 1024 MiB"]), id="merge-huge"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "scanned",
                                                           "regions": [{"account_id": "111111111111",
                                                                        "region": "Mars", "status": "scanned"}]}])},
                      FACTS, ["{tmp}/facts.json", "accounts[0].regions[0].region: 'Mars' does not match"]),
                 id="schema-facts-bad-region-name"),
    pytest.param(Case({"facts.json": facts_text(scan={"caller_account": "111111111111", "regions": ["x"]})},
                      FACTS, ["{tmp}/facts.json", "scan.regions[0]: 'x' does not match"]),
                 id="schema-facts-bad-scan-region"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "scanned",
                                                           "regions": [], "iam": {"roles": "many"}}])},
                      FACTS, ["{tmp}/facts.json", "accounts[0].iam"]), id="schema-facts-wrong-fact-type"),
    pytest.param(Case({"facts.json": facts_text(accounts=[{"account_id": "111111111111", "status": "scanned",
                                                           "regions": [], "surprise": 1}])},
                      FACTS, ["{tmp}/facts.json", "accounts[0]", "'surprise' was unexpected"]),
                 id="schema-facts-unknown-key"),
    pytest.param(Case({"merge.json": baseline_text([{**GOOD_FINDING, "severity": "urgent"}])}, MERGE,
                      ["{tmp}/merge.json", "not a valid findings.json",
                       "findings[0].severity: 'urgent' is not one of"]),
                 id="schema-merge-wrong-value"),
    pytest.param(Case({"merge.json": baseline_text([], coverage=[{"account_id": "111111111111"}])}, MERGE,
                      ["{tmp}/merge.json", "coverage[0].region: missing"]), id="schema-merge-missing-key"),
    pytest.param(Case({"merge.json": baseline_text([], scan={**findings_doc()["scan"],  # type: ignore[dict-item]
                                                          "shard": {"index": 3, "count": 2}})}, MERGE,
                      ["{tmp}/merge.json", "scan.shard: index 3 is beyond count 2"]), id="merge-shard-beyond-count"),
    pytest.param(Case({"merge.json": baseline_text([{**GOOD_FINDING, "title": "\udc80"}])}, MERGE,
                      ["{tmp}/merge.json", "findings[0].title", "lone surrogate"]), id="merge-lone-surrogate"),
    # --- flags ---
    pytest.param(Case(OK_FACTS, ["--from-facts", "{tmp}/ok-facts.json", "--format", "json,xml"],
                      ["--format", "unknown format 'xml'"]), id="flag-unknown-format"),
    pytest.param(Case({}, ["--regions", "us-east-1,mars-1"], ["--regions", "unknown region 'mars-1'"]),
                 id="flag-bad-region"),
    pytest.param(Case({}, ["--regions", "eu-wst-1"], ["--regions", "did you mean 'eu-west-1'"]),
                 id="flag-misspelled-region"),
    pytest.param(Case({}, ["--regions", ","], ["--regions", "at least one region"]), id="flag-empty-regions"),
    pytest.param(Case({}, ["--accounts", "123,456"], ["--accounts", "'123' is not a 12-digit"]),
                 id="flag-bad-account"),
    pytest.param(Case({}, ["--exclude-accounts", "12345678901x"], ["--exclude-accounts", "12-digit"]),
                 id="flag-bad-excluded-account"),
    pytest.param(Case({}, ["--max-workers", "0"], ["--max-workers"]), id="flag-bad-max-workers"),
    pytest.param(Case({}, ["--timeout", "0"], ["--timeout must be a positive number of seconds"]),
                 id="flag-timeout-zero"),
    pytest.param(Case({}, ["--timeout", "nan"], ["--timeout must be a positive"]), id="flag-timeout-nan"),
    pytest.param(Case({}, ["--fail-on", "severe"], ["--fail-on", "is not one of"]), id="flag-bad-fail-on"),
    pytest.param(Case(OK_FACTS, ["--from-facts", "{tmp}/ok-facts.json", "--save-facts", "{tmp}/saved.json"],
                      ["--save-facts and --from-facts"]), id="flag-save-and-from-facts"),
]


def materialize(case: Case, tmp: Path) -> list[str]:
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "HUGE":  # a sparse file one byte over the limit: refused by its size, never read
            with path.open("wb") as fh:
                fh.truncate(MAX_INPUT_BYTES + 1)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return [a.replace("{tmp}", str(tmp)) for a in case.args]


def check(rc: int, err: str, case: Case, tmp: Path, out: Path) -> None:
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("audit-bedrock: error: "), err
    if not lines[0].startswith("usage:"):  # argparse prints its usage line first, as every CLI does
        assert len(lines) == 1, f"one line is expected, got:\n{err}"
    for expected in case.expect:
        assert expected.replace("{tmp}", str(tmp)) in err, f"{expected!r} not in {err!r}"
    assert not out.exists(), "the output folder was created"
    assert not (tmp / "saved.json").exists(), "a facts file was written"


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    monkeypatch.chdir(tmp_path)
    args = materialize(case, tmp_path)
    out = tmp_path / "out"
    try:
        rc = main([*args, "--output-dir", str(out)])
    except SystemExit as exc:  # argparse's own usage errors
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    check(rc, err, case, tmp_path, out)


# The "done when" cases, as a real process: exit status, stderr and the file system as a user sees them.
SUBPROCESS_CASES = [p for p in CASES if p.id in ("config-malformed-yaml", "config-unknown-key-regoins",
                                                  "config-unknown-nested-reson", "facts-region-not-object",
                                                  "rule-unknown-fact-requires",
                                                  "flag-bad-account")]


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_exits_2_as_a_process(case: Case, tmp_path: Path) -> None:
    args = materialize(case, tmp_path)
    out = tmp_path / "out"
    proc = run_cli([*args, "--output-dir", str(out)], DEAD_ENDPOINT, cwd=tmp_path, timeout=60)
    check(proc.returncode, proc.stderr, case, tmp_path, out)
    assert proc.stdout == ""


def test_existing_reports_untouched_by_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bad run aimed at a folder holding earlier reports leaves them byte for byte as they were."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    out = tmp_path / "out"
    out.mkdir()
    old = {name: f"earlier {name}\n" for name in ("findings.json", "report.html", "findings.sarif")}
    for name, text in old.items():
        (out / name).write_text(text)
    (tmp_path / "config.yaml").write_text("regoins: [us-east-1]\n")
    rc = main(["--config", str(tmp_path / "config.yaml"), "--output-dir", str(out)])
    assert rc == 2 and "regoins" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == old



# Accepted inputs, however odd their values, never give a report that fails the findings schema: the schema check
# sits where foreign data enters (inputs), so what passed it is what the reports are built from.
ODD = "\x1b]0;pwned\x07 \u202e<b>[x](https://evil.example)</b>\n\U0001f600"
ODD_FINDING = {**GOOD_FINDING, "title": ODD, "message": ODD, "account_name": ODD, "resource": ODD, "remediation": "",
               "region": None, "properties": {"nested": [{"deep": [None, 1.5, True, ODD]}], ODD: ODD}}


@pytest.mark.parametrize("args", [
    pytest.param(["--baseline", "{tmp}/odd.json", "--from-facts", "{tmp}/ok-facts.json"], id="baseline"),
    pytest.param(["--merge", "{tmp}/odd.json"], id="merge"),
    pytest.param(["--merge", "{tmp}/odd.json", "--baseline", "{tmp}/odd.json"], id="merge-and-baseline"),
])
def test_accepted_odd_inputs_give_schema_valid_reports(args: list[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import validate_findings

    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    doc = findings_doc([ODD_FINDING, {**ODD_FINDING, "id": "1" * 32, "status": "suppressed"}],
                       not_rechecked=[{**ODD_FINDING, "id": "2" * 32}])
    doc["scan"]["accounts"][0]["name"] = ODD  # type: ignore[index]
    materialize(Case({"odd.json": json.dumps(doc), **OK_FACTS}, [], []), tmp_path)
    out = tmp_path / "out"
    rc = main([*(a.replace("{tmp}", str(tmp_path)) for a in args), "--output-dir", str(out), "-q", "-q",
               "--format", "json,html,sarif,markdown"])
    assert rc in (0, 1, 3)
    validate_findings(json.loads((out / "findings.json").read_text()))
