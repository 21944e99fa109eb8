"""Rule-engine properties: arbitrary facts never crash evaluation, and a gap where a rule needs a fact is
never a pass. Every loaded rule takes part, so new rules are covered as they land."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_bedrock.config import Config
from audit_bedrock.constants import SEVERITIES
from audit_bedrock.engine import GAP_RULE_ID, Evaluator, Rule, example_account, load_rules
from audit_bedrock.errors import UsageError
from audit_bedrock.facts import gap
from tests.conftest import validate_findings

RULES = load_rules()
PARAMS = Config().rule_params()
ACCOUNT = "111111111111"
REGIONS = ("us-east-1", "eu-west-1")


def _chain(node: Any) -> list[str] | None:
    """['fact', 'logging', 'destinations'] for a pure field chain, else None."""
    if not isinstance(node, dict):
        return None
    if node.get("type") == "field":
        return [node["value"]]
    if node.get("type") == "subexpression":
        parts: list[str] = []
        for child in node.get("children") or []:
            sub = _chain(child)
            if sub is None:
                return None
            parts.extend(sub)
        return parts
    return None


def _chains(node: Any, out: set[tuple[str, ...]]) -> None:
    chain = _chain(node)
    if chain is not None:
        out.add(tuple(chain))
        return
    if isinstance(node, dict):
        for child in node.get("children") or []:
            _chains(child, out)


def rule_paths() -> set[tuple[str, ...]]:
    """Every field path any rule's expressions read (fact.*, account.*, item.* and the for_each lists)."""
    paths: set[tuple[str, ...]] = set()
    for r in RULES:
        exprs = [r.condition, r.resource, *(e for _, e in r.requires), *(e for e, _ in r.severity_when),
                 *(e for _, e in r.vars), *(e for _, e in r.properties)]
        if r.for_each is not None:
            exprs.append(r.for_each)
        for e in exprs:
            _chains(e.parsed, paths)
    return {p for p in paths if p[0] in ("fact", "account", "item") and len(p) > 1}


PATHS = rule_paths()
FACT_PATHS = sorted(p[1:] for p in PATHS if p[0] == "fact")
ACCOUNT_PATHS = sorted(p[1:] for p in PATHS if p[0] == "account")
ITEM_PATHS = sorted(p[1:] for p in PATHS if p[0] == "item")
FOR_EACH = sorted({tuple(r.for_each.expression.split(".")) for r in RULES if r.for_each is not None})
VOCAB = sorted({k for p in PATHS for k in p[1:]})
GAP = st.builds(lambda a, c: gap(a, c, "denied"), st.sampled_from(["s3:GetBucketPolicy", "iam:GetRole", "x:Y"]),
                st.sampled_from(["AccessDenied", "InternalError"]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                    st.sampled_from(["s3", "cloudwatch", "text", "us-east-1", "<script>", "", "*", ACCOUNT]))
KEYS = st.one_of(st.sampled_from(VOCAB), st.text(max_size=6))
JSONISH = st.recursive(SCALARS | GAP, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(KEYS, inner, max_size=5), max_leaves=25)
STATUS = st.sampled_from(["scanned", "error", "skipped"])


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@st.composite
def along(draw: st.DrawFn, paths: list[tuple[str, ...]], base: dict[str, Any]) -> dict[str, Any]:
    """`base` with random values written along a random subset of the paths rules read."""
    for path in draw(st.lists(st.sampled_from(paths), max_size=8)) if paths else []:
        _put(base, path, draw(JSONISH))
    return base


@st.composite
def with_items(draw: st.DrawFn, doc: dict[str, Any], root: str) -> dict[str, Any]:
    """Fill the for_each lists under `root` with items carrying values along the item paths."""
    for fe in FOR_EACH:
        if fe[0] == root and draw(st.booleans()):
            items = draw(st.lists(st.one_of(along(ITEM_PATHS, {}), JSONISH), max_size=3))
            _put(doc, fe[1:], items)
    return doc


@st.composite
def region_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(along(FACT_PATHS, {}))
    doc = draw(with_items(doc, "fact"))
    doc.update(account_id=ACCOUNT, region=draw(st.sampled_from(REGIONS)), status=draw(STATUS))
    return doc


@st.composite
def account_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(along(ACCOUNT_PATHS, {}))
    doc = draw(with_items(doc, "account"))
    regions = draw(st.lists(region_docs(), max_size=3, unique_by=lambda r: r["region"]))
    doc.update(account_id=ACCOUNT, account_name=draw(st.text(max_size=10)), ou_path="Root",
               status=draw(STATUS), reason=draw(st.text(max_size=10)), regions=regions)
    return doc


def test_generators_reach_the_rule_paths() -> None:
    """The generated documents are built along the paths the rules read (else the property proves little)."""
    assert len(FACT_PATHS) >= 10 and ITEM_PATHS and FOR_EACH
    assert ("logging", "destinations") in FACT_PATHS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(account_docs())
def test_arbitrary_facts_never_crash_the_engine(doc: dict[str, Any]) -> None:
    results = Evaluator(RULES, PARAMS).evaluate_account(doc)
    ids = {r.id for r in RULES}
    for r in results:
        assert r.rule.id in ids and r.severity in SEVERITIES
        assert isinstance(r.message, str) and isinstance(r.resource, str) and r.resource
        json.dumps(r.properties)  # properties go into findings.json as they are
        if doc["status"] == "skipped":
            pytest.fail("a skipped account was judged")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.lists(account_docs(), min_size=1, max_size=2), st.dictionaries(KEYS, JSONISH, max_size=3))
def test_any_facts_file_is_rejected_or_reported(tmp_path_factory: pytest.TempPathFactory,
                                                accounts: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    """A facts file is either refused with a usage error (exit 2) or yields a schema-valid findings.json."""
    from audit_bedrock.api import Settings, evaluate_facts
    from audit_bedrock.facts import load_facts
    from audit_bedrock.reports import RenderContext, renderer

    for i, a in enumerate(accounts):
        a["account_id"] = f"{i + 1:012d}"
        for r in a["regions"]:
            r["account_id"] = a["account_id"]
    path = Path(tmp_path_factory.mktemp("facts")) / "facts.json"
    path.write_text(json.dumps({"format": "audit-bedrock-facts", "version": 1, "accounts": accounts,
                                "scan": {"caller_account": ACCOUNT, "regions": list(REGIONS), **{
                                    k: v for k, v in extra.items() if k not in ("caller_account", "regions")}}}))
    try:
        doc = load_facts(str(path))
    except UsageError:
        return
    result = evaluate_facts(doc, Settings(Config(), tuple(RULES)))
    out = json.loads(renderer("json")(result, RenderContext(catalog={r.id: r.to_catalog() for r in RULES})))
    validate_findings(out)


# --- a gap where a rule needs a fact is never a pass -------------------------------------------------

def _set_path(doc: dict[str, Any], path: list[str], value: Any) -> bool:
    """Set doc[path...] = value along existing mappings; False when the path does not reach."""
    node: Any = doc
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return False
        node = node[key]
    if not isinstance(node, dict):
        return False
    node[path[-1]] = value
    return True


def _gap_cases() -> list[Any]:
    cases = []
    for rule in RULES:
        for path, _ in rule.requires:
            for i in range(len(rule.examples.get("fire") or [])):
                cases.append(pytest.param(rule, path, i, id=f"{rule.id}-{path}-fire{i}"))
    return cases


def _place_gap(rule: Rule, facts: dict[str, Any], path: str, hole: dict[str, Any]) -> bool:
    """Put `hole` at a `requires` path of a rule example's facts (inside every for_each item for item.*)."""
    head, *rest = path.split(".")
    if head in ("fact", "account"):
        if not rest:
            return False
        return _set_path(facts, rest, hole)
    assert head == "item" and rule.for_each is not None and rest
    root, *each = rule.for_each.expression.split(".")
    assert root in ("fact", "account"), rule.for_each.expression
    node: Any = facts
    for key in each:
        node = node.get(key) if isinstance(node, dict) else None
    items = node if isinstance(node, list) else []
    placed = [_set_path(item, rest, hole) for item in items if isinstance(item, dict)]
    return bool(placed) and all(placed)


@pytest.mark.parametrize(("rule", "path", "index"), _gap_cases())
def test_gap_in_a_required_fact_is_scan003(rule: Rule, path: str, index: int) -> None:
    """Take an example that fires the rule, replace one fact it requires by a gap: SCAN-003 names the rule
    and the permission, and the rule itself no longer fires there."""
    example = rule.examples["fire"][index]
    facts = copy.deepcopy(example["facts"])
    hole = gap("test:ReadTheFact", "AccessDenied", "denied by the test")
    if not _place_gap(rule, facts, path, hole):
        pytest.skip(f"example {index} of {rule.id} has nothing at {path} to replace")
    params = {**PARAMS, **(example.get("params") or {})}
    results = Evaluator(RULES, params).evaluate_account(example_account(rule, facts))
    fired = [r for r in results if r.rule.id == rule.id]
    blocked = [r for r in results if r.rule.id == GAP_RULE_ID and r.properties.get("blocked_rule") == rule.id]
    assert blocked, f"{rule.id} with a gap at {path}: no SCAN-003 (it {'fired' if fired else 'passed'})"
    assert all("test:ReadTheFact" in r.message and rule.id in r.message for r in blocked)
    if not path.startswith("item."):
        assert not fired, f"{rule.id} fired although {path} is a gap"


@pytest.mark.parametrize(("logging_fact", "extra", "rule_id", "error"), [
    pytest.param({"enabled": True, "destinations": 0, "large_data_s3": False}, {}, "BIL-004", "JMESPathTypeError",
                 id="number-for-list"),
    pytest.param({"enabled": True, "destinations": ["s3"], "data_types": "all"}, {}, "BIL-003", "JMESPathTypeError",
                 id="string-for-map"),
    # issue 12: jmespath compares with Python's `<`: a string against a number is a TypeError, not a JMESPathError
    pytest.param({"enabled": False}, {"usage": {"invocations": "many"}}, "BIL-002", "TypeError",
                 id="string-compared-with-number"),
])
def test_fact_of_the_wrong_type_is_scan003(logging_fact: dict[str, Any], extra: dict[str, Any], rule_id: str,
                                           error: str) -> None:
    """Regression: an evaluation error used to escape the engine and end the run with a traceback; it is
    contained per rule and scope, and the other rules of the same region are still judged."""
    doc = {"account_id": ACCOUNT, "status": "scanned", "regions": [
        {"account_id": ACCOUNT, "region": "us-east-1", "status": "scanned", "logging": logging_fact, **extra}]}
    results = Evaluator(RULES, PARAMS).evaluate_account(doc)
    blocked = [r for r in results if r.rule.id == GAP_RULE_ID and r.properties["blocked_rule"] == rule_id]
    assert blocked and blocked[0].properties["error_codes"] == [error]
    assert "evaluating its facts failed" in blocked[0].message
    assert not [r for r in results if r.rule.id == rule_id]


def test_coverage_keeps_only_schema_values() -> None:
    """Regression: a facts file's odd logging values used to crash the run or make findings.json invalid."""
    from audit_bedrock.scan import coverage_cell

    cell = coverage_cell(ACCOUNT, {"region": "us-east-1", "status": "scanned", "logging": {
        "enabled": True, "destinations": ["s3", 5, "<b>"], "large_data_s3": None,
        "data_types": {"text": True, "image": None, "sound": True}}})
    assert cell.destinations == ("s3",) and cell.data_types == (("text", True),)
    assert coverage_cell(ACCOUNT, {"region": "us-east-1", "status": "scanned", "logging": {
        "enabled": False, "destinations": 7, "data_types": [1]}}).destinations == ()


# `[@,@][]` doubles the list it is given: chained 30 times it would build 2**30 elements (hours, gigabytes).
EXPLODING = "fact" + ".[@,@][]" * 30


@pytest.mark.parametrize("key", ["condition", "for_each", "vars", "requires", "resource"])
def test_an_exponential_rule_expression_is_bounded(key: str) -> None:
    """issue 12: a rule pack can make evaluation exponentially slow; each rule's evaluation for one account
    or region is bounded (counted JMESPath steps), the rule yields SCAN-003 naming it and the bound, and the
    other rules of the same region are still judged."""
    import dataclasses
    import time

    import jmespath

    from audit_bedrock.engine import RULE_STEP_LIMIT

    base = next(r for r in RULES if r.id == "BIL-001")
    expr = jmespath.compile(EXPLODING)
    change: dict[str, Any] = {
        "condition": {"condition": expr}, "for_each": {"for_each": expr},
        "vars": {"vars": (("boom", expr),)}, "requires": {"requires": (("fact.boom", expr),)},
        "resource": {"resource": expr}}[key]
    slow = dataclasses.replace(base, id="TST-900", **change)
    doc = {"account_id": ACCOUNT, "status": "scanned", "regions": [
        {"account_id": ACCOUNT, "region": "us-east-1", "status": "scanned", "logging": {"enabled": False}}]}
    started = time.monotonic()
    results = Evaluator([*RULES, slow], PARAMS).evaluate_account(doc)
    assert time.monotonic() - started < 10, "the bound did not stop the evaluation"
    blocked = [r for r in results if r.rule.id == GAP_RULE_ID and r.properties["blocked_rule"] == "TST-900"]
    assert len(blocked) == 1, results
    error = blocked[0].properties["evaluation_error"]
    assert "TST-900" in error and f"{RULE_STEP_LIMIT:,}" in error and "EvaluationLimitError" in \
        blocked[0].properties["error_codes"]
    assert not [r for r in results if r.rule.id == "TST-900"]
    assert [r.rule.id for r in results if r.rule.id == "BIL-001"] == ["BIL-001"]  # the scan goes on
