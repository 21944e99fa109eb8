"""Property-based tests of the policy analyzer: Deny never grants, wildcards follow IAM, nothing well-formed crashes."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_bedrock.analyzer import (
    Request,
    confused_deputy_guarded,
    decide,
    matches,
    trusts_service,
    unconditioned_public_grants,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POLICY_SETTINGS = settings(SETTINGS, max_examples=80)  # policy generation dominates the run time
ACCOUNT = "111122223333"
ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "logs:PutLogEvents", "logs:CreateLogStream",
           "kms:GenerateDataKey", "sts:AssumeRole"]
RESOURCES = [f"arn:aws:s3:::bucket/prefix/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/x.gz",
             f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/bedrock:log-stream:aws/bedrock/modelinvocations",
             "arn:aws:s3:::other/key", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/abc"]
SERVICES = ["bedrock.amazonaws.com", "logs.amazonaws.com", "*"]
AWS_PRINCIPALS = ["*", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/r",
                  "arn:aws:iam::444455556666:role/x"]
KEYS = ["aws:SourceAccount", "aws:SourceArn", "aws:SecureTransport", "aws:SourceIp", "aws:CurrentTime",
        "s3:max-keys", "aws:TagKeys", "aws:PrincipalOrgID"]
VALUES = [ACCOUNT, "444455556666", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:*", "true", "false", "10.0.0.0/8",
          "10.1.2.3", "2024-01-01T00:00:00Z", "5", "o-abc", "a*", "?", "${aws:username}", ""]
BASE_OPERATORS = ["StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringLike", "StringNotLike",
                  "ArnEquals", "ArnLike", "ArnNotLike", "Bool", "Null", "NumericEquals", "NumericLessThan",
                  "DateGreaterThan", "IpAddress", "NotIpAddress", "BinaryEquals", "StringEqualz"]


@st.composite
def wildcarded(draw: st.DrawFn, value: str, *, change_case: bool = False) -> str:
    """A pattern that matches `value` by construction: characters kept, case-flipped, `?`, or runs as `*`."""
    out, i = [], 0
    while i < len(value):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            out.append("?")
        elif choice == 1:
            out.append("*")
            i += draw(st.integers(0, 4)) - 1  # the star swallows 0..4 characters
        elif choice == 2 and change_case:
            out.append(value[i].swapcase())
        else:
            out.append(value[i])
        i += 1
    return "".join(out)


def some(values: list[str]) -> st.SearchStrategy[str]:
    """Realistic values, their wildcarded forms, and arbitrary short text."""
    base = st.sampled_from(values)
    return st.one_of(base, base.flatmap(lambda v: wildcarded(v, change_case=True)), st.just("*"), st.text(max_size=8))


def one_or_list(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.lists(strategy, max_size=3))


principals = st.one_of(
    st.just("*"),
    st.fixed_dictionaries({"AWS": one_or_list(st.sampled_from(AWS_PRINCIPALS))}),
    st.fixed_dictionaries({"Service": one_or_list(st.sampled_from(SERVICES))}),
)
operators = st.builds(
    lambda q, op, ie: q + op + ie,
    st.sampled_from(["", "ForAnyValue:", "ForAllValues:", "ForSome:"]),
    st.one_of(st.sampled_from(BASE_OPERATORS), st.text(max_size=6)),
    st.sampled_from(["", "IfExists"]),
)
condition_values = st.one_of(st.sampled_from(VALUES), st.text(max_size=8), st.booleans(), st.integers(-5, 50))
conditions = st.dictionaries(
    operators, st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), one_or_list(condition_values),
                               min_size=1, max_size=2), max_size=2)


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None, resources: bool = True) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": effect or draw(st.sampled_from(["Allow", "Deny"]))}
    if draw(st.booleans()):
        stmt["Sid"] = draw(st.text(max_size=5))
    action = draw(st.sampled_from(["Action", "Action", "NotAction", None]))
    if action:
        stmt[action] = draw(one_or_list(some(ACTIONS)))
    resource = draw(st.sampled_from(["Resource", "Resource", "NotResource", None])) if resources else None
    if resource:
        stmt[resource] = draw(one_or_list(some(RESOURCES)))
    principal = draw(st.sampled_from(["Principal", "Principal", "NotPrincipal", None]))
    if principal:
        stmt[principal] = draw(principals)
    if draw(st.booleans()):
        stmt["Condition"] = draw(conditions)
    return stmt


@st.composite
def policies(draw: st.DrawFn, resources: bool = True) -> Any:
    """A well-formed policy as a dict, a JSON string or a URL-encoded JSON string."""
    stmts = draw(st.lists(statements(resources=resources), max_size=4))
    doc: dict[str, Any] = {"Version": "2012-10-17", "Statement": stmts[0] if len(stmts) == 1 else stmts}
    form = draw(st.sampled_from(["dict", "json", "url"]))
    if form == "json":
        return json.dumps(doc)
    return quote(json.dumps(doc)) if form == "url" else doc


contexts = st.dictionaries(st.sampled_from(KEYS), st.one_of(st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES),
                                                                                               max_size=3)), max_size=4)
requests = st.builds(
    Request,
    action=st.sampled_from(ACTIONS),
    resource=st.sampled_from(RESOURCES),
    principal=st.one_of(st.none(), st.sampled_from([{"Service": "bedrock.amazonaws.com"}, {"AWS": AWS_PRINCIPALS[3]}])),
    context=contexts,
)


@POLICY_SETTINGS
@given(st.lists(policies(), max_size=3), requests)
def test_decide_never_raises_on_well_formed_policies(pols: list[Any], request: Request) -> None:
    assert decide(pols, request) in ("allow", "explicit_deny", "implicit_deny")


@POLICY_SETTINGS
@given(st.lists(policies(), max_size=3), requests, statements(effect="Deny"))
def test_adding_any_deny_never_grants(pols: list[Any], request: Request, deny: dict[str, Any]) -> None:
    before = decide(pols, request)
    after = decide([*pols, {"Statement": [deny]}], request)
    assert after != "allow" or before == "allow"
    assert before != "explicit_deny" or after == "explicit_deny"


@st.composite
def matching_deny(draw: st.DrawFn, request: Request) -> dict[str, Any]:
    """A Deny statement built to match `request`: wildcarded action and resource, a satisfied condition."""
    stmt: dict[str, Any] = {"Effect": "Deny", "Action": draw(wildcarded(request.action, change_case=True)),
                            "Resource": draw(wildcarded(request.resource))}
    if request.principal is not None:
        stmt["Principal"] = draw(st.sampled_from(["*", {"AWS": "*"}, dict(request.principal)]))
    present = [(k, v) for k, v in request.context.items() if isinstance(v, str)]
    with_condition: bool = draw(st.booleans())
    if present and with_condition:
        key, value = draw(st.sampled_from(present))
        stmt["Condition"] = {"StringEquals": {key.upper(): value}, "Null": {"aws:NotInTheContext": "true"}}
    return stmt


@POLICY_SETTINGS
@given(st.lists(policies(), max_size=3), requests, st.data())
def test_matching_deny_always_denies(pols: list[Any], request: Request, data: st.DataObject) -> None:
    deny = data.draw(matching_deny(request))
    assert decide([*pols, {"Statement": deny}], request) == "explicit_deny"


def reference_match(pattern: str, value: str, ignore_case: bool) -> bool:
    """IAM wildcard semantics as a regex: `*` is `.*`, `?` is `.`, everything else literal, whole string."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


@SETTINGS
@given(st.text(alphabet="ab*?:/.\n", max_size=12), st.text(alphabet="ab*?:/.\n", max_size=12))
def test_matches_agrees_with_regex_reference(pattern: str, value: str) -> None:
    assert matches(pattern, value) is reference_match(pattern, value, False)


@SETTINGS
@given(st.text(alphabet="aAbBsS3:*?", max_size=12), st.text(alphabet="aAbBsS3:", max_size=12))
def test_matches_ignore_case_agrees_with_regex_reference(pattern: str, value: str) -> None:
    assert matches(pattern, value, ignore_case=True) is reference_match(pattern, value, True)
    assert matches(pattern, value) is reference_match(pattern, value, False)


@SETTINGS
@given(st.text(max_size=15), st.text(max_size=15))
def test_matches_agrees_on_arbitrary_unicode(pattern: str, value: str) -> None:
    assert matches(pattern, value) is reference_match(pattern, value, False)


@SETTINGS
@given(st.sampled_from(ACTIONS + RESOURCES).flatmap(lambda v: st.tuples(st.just(v), wildcarded(v, change_case=True))))
def test_derived_pattern_matches_its_value(pair: tuple[str, str]) -> None:
    value, pattern = pair
    assert matches(pattern, value, ignore_case=True)


@POLICY_SETTINGS
@given(policies(resources=False), st.sampled_from(SERVICES[:2]), st.sampled_from(ACTIONS), contexts)
def test_trust_helpers_never_raise_and_agree_with_decide(policy: Any, service: str, action: str,
                                                          context: dict[str, Any]) -> None:
    trusted = trusts_service(policy, service, action)
    assert isinstance(confused_deputy_guarded(policy, service, action), bool)
    assert all(isinstance(s, str) for s in unconditioned_public_grants(policy))
    # Without Resource elements, any context under which decide() allows the service implies trust.
    if decide([policy], Request(action, RESOURCES[0], {"Service": service}, context)) == "allow":
        assert trusted
