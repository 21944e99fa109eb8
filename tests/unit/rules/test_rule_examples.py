"""Every example in every rule file of the default pack: `fire` examples fire, `pass` examples do not."""

from __future__ import annotations

import pytest

from audit_bedrock.config import Config
from audit_bedrock.engine import Rule, check_example, load_rules

RULES = load_rules()
CASES = [
    pytest.param(rule, kind, ex, id=f"{rule.id}-{kind}-{ex['name']}")
    for rule in RULES
    for kind in ("fire", "pass")
    for ex in rule.examples[kind]
]


@pytest.mark.parametrize(("rule", "kind", "example"), CASES)
def test_rule_example(rule: Rule, kind: str, example: dict[str, object]) -> None:
    problem = check_example(RULES, rule, kind, example, Config().rule_params())
    assert problem is None, problem


def test_every_rule_has_both_kinds_of_example() -> None:
    for rule in RULES:
        assert rule.examples["fire"] and rule.examples["pass"], rule.id


def test_catalog_ids_are_the_contract() -> None:
    ids = {r.id for r in RULES}
    assert {"BIL-001", "BIL-003", "BIL-004", "SCAN-001", "SCAN-002", "SCAN-003"} <= ids
