"""The facts vocabulary: the schema is sound, it rejects facts outside it, rule paths are checked precisely,
and --list-facts and docs/rule-packs.md's table say what the schema says."""

from __future__ import annotations

from typing import Any

import jmespath
import jsonschema
import pytest

from audit_bedrock.cli import main
from audit_bedrock.derive import derive
from audit_bedrock.facts import gap
from audit_bedrock.rulepaths import unknown_fact
from audit_bedrock.vocabulary import (
    README_BEGIN,
    README_END,
    branches,
    facts,
    is_gap_schema,
    render_markdown,
    render_text,
    resolve,
    schema,
)
from tests.conftest import ROOT, validate_facts

ACCT = "111111111111"
DENIED = gap("s3:GetBucketPolicy", "AccessDenied", "denied")


def _properties(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every named property schema in `node`, recursively."""
    out = []
    for b in branches(node):
        if is_gap_schema(b) or (path and b is schema()["$defs"]["region"]):
            continue  # the gap value is no fact; account.regions[] are the region documents listed already
        for key, sub in (b.get("properties") or {}).items():
            out.append((f"{path}.{key}", sub))
            out.extend(_properties(sub, f"{path}.{key}"))
        for part in ("items", "additionalProperties"):
            if isinstance(b.get(part), dict):
                out.extend(_properties(b[part], f"{path}[{part}]"))
    return out


FACT_PROPERTIES = [p for name in ("region", "account", "params")
                   for p in _properties(schema()["$defs"][name], name)]


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("path,node", FACT_PROPERTIES, ids=[p for p, _ in FACT_PROPERTIES])
def test_every_fact_has_a_meaning_and_honest_marks(path: str, node: dict[str, Any]) -> None:
    assert str(node.get("description", "")).strip(), f"{path} has no description"
    alternatives = node.get("anyOf") or []
    allows_gap = any(is_gap_schema(resolve(a)) for a in alternatives)
    assert allows_gap == bool(node.get("x-gap")), f"{path}: x-gap must match whether anyOf admits a gap"
    assert node.get("x-derived") in (None, True)


def raw_account() -> dict[str, Any]:
    """A raw account document as the collectors write it: a bucket destination with a KMS key and a role."""
    role = f"arn:aws:iam::{ACCT}:role/logs"
    region = {
        "account_id": ACCT, "region": "us-east-1", "status": "scanned",
        "logging": {"enabled": True, "destinations": ["cloudwatch", "s3"], "large_data_s3": False,
                    "data_types": {"text": True, "image": True, "embedding": True, "video": False, "audio": False},
                    "s3": {"bucket": "logs", "prefix": ""},
                    "cloudwatch": {"log_group": "/g", "role_arn": role, "large_data": None},
                    "raw": {"textDataDeliveryEnabled": True}},
        "log_group": {"name": "/g", "arn": f"arn:aws:logs:us-east-1:{ACCT}:log-group:/g", "region": "us-east-1",
                      "exists": True, "retention_days": None, "kms_key_id": None, "log_group_class": "STANDARD"},
        "buckets": [{"name": "logs", "arn": "arn:aws:s3:::logs", "exists": True, "region": "us-east-1",
                     "policy": DENIED, "public_access_block": None, "object_ownership": "BucketOwnerEnforced",
                     "acl": None, "encryption": {"algorithm": "aws:kms", "kms_key_id": "k", "bucket_key_enabled": True},
                     "lifecycle_rules": None, "uses": [{"destination": "s3", "prefix": ""}]}],
        "kms_keys": [{"ref": "k", "exists": True, "arn": f"arn:aws:kms:us-east-1:{ACCT}:key/k", "state": "Enabled",
                      "manager": "CUSTOMER", "policy": None, "used_by": [{"kind": "bucket", "name": "logs"}]}],
        "usage": None,
    }
    return {"account_id": ACCT, "account_name": "a", "ou_path": "Root", "status": "scanned", "reason": "",
            "regions": [region, {"account_id": ACCT, "region": "eu-west-1", "status": "skipped",
                                 "reason": "region not enabled in this account"}],
            "scanned_regions": ["us-east-1"],
            "iam": {"roles": {role: {"arn": role, "name": "logs", "exists": False, "trust_policy": None,
                                     "inline_policies": None, "attached_policies": None,
                                     "permissions_boundary": None, "referenced_by": ["us-east-1"]}},
                    "scanned_regions": ["us-east-1"], "unread_regions": [], "regions_subset": True,
                    "unreferenced_bedrock_roles": []}}


def test_raw_and_derived_documents_both_validate() -> None:
    raw = raw_account()
    validate_facts(raw)
    derived = derive(raw)  # a new document: derivation is a pure stage
    assert "delivery_role" not in raw["regions"][0]
    assert "delivery_role" in derived["regions"][0]  # derivation really added facts
    validate_facts(derived)
    validate_facts(derived["regions"][0])
    validate_facts({"format": "audit-bedrock-facts", "version": 2, "accounts": [derived],
                    "scan": {"caller_account": ACCT, "regions": ["us-east-1"], "api_calls": 3}})


def _region(doc: dict[str, Any]) -> dict[str, Any]:
    r: dict[str, Any] = doc["regions"][0]
    return r


BAD: list[Any] = [
    pytest.param(lambda d: _region(d).update(log_groups=None), "log_groups", id="unknown-region-fact"),
    pytest.param(lambda d: _region(d)["buckets"][0].update(public_acl=True), "public_acl", id="unknown-bucket-fact"),
    pytest.param(lambda d: d["iam"].update(orphans=[]), "orphans", id="unknown-account-fact"),
    pytest.param(lambda d: _region(d)["log_group"].update(retention_days="30"), "'30'", id="wrong-type"),
    pytest.param(lambda d: _region(d)["logging"].update(enabled=DENIED), "enabled", id="gap-where-none-can-be"),
    pytest.param(lambda d: _region(d)["buckets"][0].update(exists={"gap": True, "action": "s3:X"}), "exists",
                 id="incomplete-gap"),
    pytest.param(lambda d: _region(d).update(status="done"), "done", id="bad-status"),
    pytest.param(lambda d: d.update(account_id="12345"), "12345", id="bad-account-id"),
]


@pytest.mark.parametrize("change,named", BAD)
def test_facts_outside_the_vocabulary_are_rejected(change: Any, named: str) -> None:
    doc = raw_account()
    change(doc)
    with pytest.raises(jsonschema.ValidationError) as info:
        validate_facts(doc)
    assert named in str(info.value)


# (scope, for_each, expression, the unknown path reported or None)
PATHS: list[Any] = [
    pytest.param("region", None, "fact.logging.enabled == `false`", None, id="plain-path"),
    pytest.param("region", None, "fact.logging.enabeld", "fact.logging.enabeld", id="plain-typo"),
    pytest.param("region", None, "fact.usage.invocations > `0`", None, id="through-a-gap-or-null"),
    pytest.param("region", None, "fact.buckets[?exists == `true`].name", None, id="filter"),
    pytest.param("region", None, "fact.buckets[?exist].name", "fact.buckets[].exist", id="filter-condition-typo"),
    pytest.param("region", None, "fact.buckets[].nme", "fact.buckets[].nme", id="projection-typo"),
    pytest.param("region", None, "fact.buckets[*].uses[].prefix", None, id="nested-projections"),
    pytest.param("region", None, "fact.buckets[0].uses[0].destinaton", "fact.buckets[].uses[].destinaton",
                 id="index-typo"),
    pytest.param("region", None, "fact.buckets | [0].arn", None, id="pipe"),
    pytest.param("region", None, "fact.buckets | [0].ar", "fact.buckets[].ar", id="pipe-typo"),
    pytest.param("region", None, "sort_by(fact.buckets, &name)[0].arn", None, id="sort-by"),
    pytest.param("region", None, "sort_by(fact.buckets, &nam)", "fact.buckets[].nam", id="expref-typo"),
    pytest.param("region", None, "length(fact.bukets)", "fact.bukets", id="function-argument"),
    pytest.param("region", None, "keys(fact.logging).whatever", None, id="function-result-not-guessed"),
    pytest.param("region", None, "fact.buckets[0].policy.Statement[0].Effect", None, id="opaque-policy"),
    pytest.param("region", None, "fact.logging.raw.textDataDeliveryEnabled", None, id="opaque-raw"),
    pytest.param("region", None, "[fact.region, fact.regon]", "fact.regon", id="multiselect-list"),
    pytest.param("region", None, "{r: fact.regon}", "fact.regon", id="multiselect-dict"),
    pytest.param("region", None, "[fact.region, 'x'][?@ != ''].anything", None, id="multiselect-result-not-guessed"),
    pytest.param("region", None, "fact.log_group.retention_days == null", None, id="null-idiom"),
    pytest.param("region", None, "fact.log_group.name.first", "fact.log_group.name.first", id="field-of-a-string"),
    pytest.param("region", None, "fact.log_group.exists.code", None, id="gap-field-of-a-gap-able-fact"),
    pytest.param("region", None, "account.iam.roles.*.exists", None, id="map-values"),
    pytest.param("region", None, "account.iam.roles.*.exist", "account.iam.roles.*.exist", id="map-values-typo"),
    pytest.param("region", None, "account.regions", "account.regions", id="account-has-no-regions-in-rules"),
    pytest.param("region", None, "`{\"a\": 1}`.a", None, id="literal"),
    pytest.param("region", None, "facts.logging", "facts", id="unknown-root"),
    pytest.param("account", None, "fact.logging", "fact", id="no-fact-in-account-scope"),
    pytest.param("region", None, "item.exists", "item", id="no-item-without-for-each"),
    pytest.param("region", "fact.buckets", "item.uses[].prefix", None, id="item-of-for-each"),
    pytest.param("region", "fact.buckets", "item.public_acl", "item.public_acl", id="item-typo"),
    pytest.param("account", "account.iam.unreferenced_bedrock_roles", "item.target_log_groups[].exists", None,
                 id="account-item"),
    pytest.param("region", "fact.buckets[?exists]", "item.name", None, id="filtered-for-each"),
    pytest.param("region", "fact.buckets[].uses[]", "item.prefix", None, id="flattened-for-each"),
    pytest.param("region", "keys(fact.logging)", "item.whatever", None, id="undeterminable-for-each"),
    pytest.param("region", None, "params.approved_destinations.log_groups", None, id="params"),
    pytest.param("region", None, "params.approved_destination", "params.approved_destination", id="params-typo"),
]


@pytest.mark.parametrize("scope,for_each,expression,unknown", PATHS)
def test_rule_paths(scope: str, for_each: str | None, expression: str, unknown: str | None) -> None:
    each = jmespath.compile(for_each).parsed if for_each else None
    problem = unknown_fact(scope, each, [("condition", jmespath.compile(expression).parsed)])
    if unknown is None:
        assert problem is None
    else:
        assert problem is not None and f"unknown fact '{unknown}'" in problem[1], problem


def test_did_you_mean_names_the_full_path() -> None:
    problem = unknown_fact("region", None, [("condition", jmespath.compile("fact.log_group.exist").parsed)])
    assert problem == ("condition", "unknown fact 'fact.log_group.exist' (did you mean 'fact.log_group.exists'?); "
                                    "audit-bedrock --list-facts lists the known ones")


def test_list_facts_prints_the_vocabulary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-facts"]) == 0
    out = capsys.readouterr().out
    assert out == render_text()
    rows = out.splitlines()[1:]
    assert len(rows) == len(facts())
    row = next(r for r in rows if r.split()[0] == "fact.buckets[].bedrock_can_put")
    assert row.split()[1:4] == ["boolean|null", "yes", "yes"]  # type, gap, derived
    assert "bedrock.amazonaws.com s3:PutObject" in row


def test_the_readme_fact_table_is_the_schema() -> None:
    text = (ROOT / "docs" / "rule-packs.md").read_text(encoding="utf-8")
    assert README_BEGIN in text and README_END in text
    table = text[text.index(README_BEGIN) + len(README_BEGIN):text.index(README_END)].strip("\n")
    assert table == render_markdown().strip("\n"), (
        "docs/rule-packs.md's fact table differs from scanner/facts.schema.json: "
        "run python -m audit_bedrock.vocabulary docs/rule-packs.md")
