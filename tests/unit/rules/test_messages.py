"""Finding messages read as sentences: proper plurals, no Python values, the scanner's names as words."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from audit_bedrock.config import Config
from audit_bedrock.engine import Evaluator, Rule, example_account, load_rules

RULES = load_rules()
BY_ID = {r.id: r for r in RULES}
RAW = re.compile(r"\(s\)|\bNone\b|\bTrue\b|\bFalse\b|\{'|\['|\blarge_data\b|\blog_group\b")


def messages(rule: Rule, facts: dict[str, Any]) -> list[str]:
    found = Evaluator(RULES, Config().rule_params()).evaluate_account(example_account(rule, facts))
    return [r.message for r in found if r.rule.id == rule.id]


@pytest.mark.parametrize(("rule", "example"), [
    pytest.param(rule, ex, id=f"{rule.id}-{ex['name']}") for rule in RULES for ex in rule.examples["fire"]
])
def test_fire_examples_say_no_raw_value(rule: Rule, example: dict[str, Any]) -> None:
    for message in messages(rule, example["facts"]):
        assert not RAW.search(message), message


def _with(rule_id: str, example: int, path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    facts = copy.deepcopy(BY_ID[rule_id].examples["fire"][example]["facts"])
    node = facts
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return facts


@pytest.mark.parametrize(("rule_id", "facts", "says"), [
    pytest.param("BIL-002", _with("BIL-002", 0, ("usage", "invocations"), 1), "invoked 1 time in", id="one-time"),
    pytest.param("BIL-002", _with("BIL-002", 0, ("usage", "invocations"), 42), "invoked 42 times in", id="times"),
    pytest.param("BIL-022", _with("BIL-022", 0, ("delivery", "invocations", "last_day_count"), 1),
                 "invoked 1 time in", id="delivery-one-time"),
    pytest.param("BIL-010", BY_ID["BIL-010"].examples["fire"][0]["facts"],
                 "targets a log group that does not exist: /bedrock/legacy", id="one-log-group"),
    pytest.param("BIL-010", _with("BIL-010", 0, ("iam", "unreferenced_bedrock_roles", 0, "missing_log_groups"),
                                  ["/a", "/b"]), "targets log groups that do not exist: /a, /b", id="log-groups"),
    pytest.param("BIL-011", BY_ID["BIL-011"].examples["fire"][0]["facts"], "delivers invocation logs (s3Config) to",
                 id="s3config-in-words"),
])
def test_counts_and_names_in_words(rule_id: str, facts: dict[str, Any], says: str) -> None:
    found = messages(BY_ID[rule_id], facts)
    assert found and all(says in m for m in found), found
