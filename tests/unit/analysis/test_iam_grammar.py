"""The policy analyzer checked against IAM's documented grammar and condition keys, one named case per doc rule.

Sources (cited per table):
- ACTION: IAM UG "IAM JSON policy elements: Action" (a service namespace followed by the action name; wildcards
  only in the name) and IAM Access Analyzer policy check "Error - Invalid service in action"
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html
- RESOURCE: IAM UG "IAM JSON policy elements: Resource": "You can use wildcard characters (* and ?) within the
  individual segments of an ARN ... You can't use a wildcard in the service segment"; Access Analyzer "Error -
  Missing ARN field": "Resource ARNs must include at least 6 fields"
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- KEYS: IAM UG "AWS global condition context keys" (aws:PrincipalIsAWSService, aws:PrincipalServiceName,
  aws:PrincipalServiceNamesList, aws:EpochTime) and "Single-valued vs. multivalued context keys"
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
"""

from __future__ import annotations

from typing import Any

import pytest

from audit_bedrock.analyzer import PolicyError, Request, action_pattern_problem, arn_pattern_problem, decide
from audit_bedrock.derive import bedrock_context

ACCOUNT = "111122223333"
REGION = "eu-west-1"
BUCKET_ARN = "arn:aws:s3:::logs"
OBJECT_ARN = "arn:aws:s3:::logs/AWSLogs/111122223333/x.json.gz"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/Bob"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def stmt(effect: str = "Allow", **elements: Any) -> dict[str, Any]:
    return {"Effect": effect, **elements}


# ---------------------------------------------------------------------------------------------- ACTION

ACTION_CASES = [
    # (name, statements, action, expected decision)
    ("star-alone-is-every-action", [stmt(Action="*", Resource="*")], "s3:GetBucketPolicy", "allow"),
    ("name-wildcard-matches", [stmt(Action="s3:GetBucket*", Resource="*")], "s3:GetBucketPolicy", "allow"),
    ("case-insensitive", [stmt(Action="S3:getbucketpolicy", Resource="*")], "s3:GetBucketPolicy", "allow"),
    ("wildcard-namespace-allow-matches-nothing", [stmt(Action="*:GetBucketPolicy", Resource="*")],
     "s3:GetBucketPolicy", "implicit_deny"),
    ("question-mark-namespace-allow-matches-nothing", [stmt(Action="s?:GetBucketPolicy", Resource="*")],
     "s3:GetBucketPolicy", "implicit_deny"),
    ("no-namespace-allow-matches-nothing", [stmt(Action="GetBucketPolicy", Resource="*")],
     "s3:GetBucketPolicy", "implicit_deny"),
    ("invalid-entry-beside-valid-one-still-grants", [stmt(Action=["*:Get*", "s3:Get*"], Resource="*")],
     "s3:GetBucketPolicy", "allow"),
]


@pytest.mark.parametrize(("statements", "action", "expected"),
                         [pytest.param(s, a, e, id=n) for n, s, a, e in ACTION_CASES])
def test_action_grammar(statements: list[dict[str, Any]], action: str, expected: str) -> None:
    assert decide([policy(*statements)], Request(action, BUCKET_ARN)) == expected


# ---------------------------------------------------------------------------------------------- RESOURCE

RESOURCE_CASES = [
    # (name, pattern, resource, expected decision of an Allow on `pattern`)
    ("star-is-every-resource", "*", USER_ARN, "allow"),
    # In an Allow's Resource an entry IAM refuses only narrows the grant: it matches nothing.
    ("wildcard-service-allow-matches-nothing", "arn:aws:*::111122223333:user/Bob", USER_ARN, "implicit_deny"),
    ("five-fields-allow-matches-nothing", "arn:aws:iam::111122223333", USER_ARN, "implicit_deny"),
    ("bare-name-allow-matches-nothing", "Bob", USER_ARN, "implicit_deny"),
    ("wildcard-in-resource-id", f"arn:aws:iam::{ACCOUNT}:user/*", USER_ARN, "allow"),
    # The doc allows wildcards in every segment but the service one; the resource type is part of the sixth.
    ("wildcard-in-resource-type-is-a-glob", f"arn:aws:iam::{ACCOUNT}:u*", USER_ARN, "allow"),
    ("wildcard-in-resource-type-no-match", f"arn:aws:iam::{ACCOUNT}:r*", USER_ARN, "implicit_deny"),
    ("wildcard-in-region-and-account", "arn:aws:iam::*:user/Bob", USER_ARN, "allow"),
    ("question-mark-one-character", f"arn:aws:iam::{ACCOUNT}:user/Bo?", USER_ARN, "allow"),
]


@pytest.mark.parametrize(("pattern", "resource", "expected"),
                         [pytest.param(p, r, e, id=n) for n, p, r, e in RESOURCE_CASES])
def test_resource_patterns(pattern: str, resource: str, expected: str) -> None:
    assert decide([policy(stmt(Action="*", Resource=pattern))], Request("iam:GetUser", resource)) == expected


MALFORMED = [
    # (name, effect, element, entry): IAM refuses these entries, and reading them as "matches nothing" would widen
    # what is allowed (a NotResource/NotAction excluding nothing, a Deny denying nothing): the policy is a gap.
    ("five-fields-notresource", "Allow", "NotResource", "arn:aws:s3::logs"),
    ("three-fields-notresource", "Allow", "NotResource", "arn:aws:s3"),
    ("wildcard-service-notresource", "Allow", "NotResource", "arn:aws:s?:::logs"),
    ("five-fields-deny-resource", "Deny", "Resource", "arn:aws:s3::logs"),
    ("wildcard-service-deny-resource", "Deny", "Resource", "arn:aws:*:::logs"),
    ("empty-service-deny-resource", "Deny", "Resource", "arn:aws::::logs"),
    ("wildcard-namespace-notaction", "Allow", "NotAction", "*:PutObject"),
    ("wildcard-namespace-deny-action", "Deny", "Action", "*:GetObject"),
    ("no-namespace-deny-action", "Deny", "Action", "GetObject"),
]


@pytest.mark.parametrize(("effect", "element", "entry"),
                         [pytest.param(f, e, p, id=n) for n, f, e, p in MALFORMED])
def test_entries_iam_refuses_make_the_policy_a_gap_where_guessing_could_over_grant(effect: str, element: str,
                                                                                     entry: str) -> None:
    elements: dict[str, Any] = {"Action": "s3:*", "Resource": "*"}
    elements.pop(element.removeprefix("Not"))
    elements[element] = entry
    assert (action_pattern_problem if element.endswith("Action") else arn_pattern_problem)(entry)
    with pytest.raises(PolicyError, match=element):
        decide([policy(stmt(Action="s3:*", Resource="*"), stmt(effect, **elements))],
               Request("s3:GetObject", OBJECT_ARN))


def test_short_notresource_never_grants_everything_through_derive() -> None:
    """The bug the issue names: an Allow with NotResource 'arn:aws:s3' used to grant every resource. Through
    derive's guard it is now a gap (SCAN-003), never a pass."""
    from audit_bedrock.derive import guarded

    bad = policy(stmt(Action="s3:PutObject", NotResource="arn:aws:s3", Principal={"Service": "bedrock.amazonaws.com"}))
    verdict = guarded("s3:GetBucketPolicy",
                      lambda: decide([bad], Request("s3:PutObject", OBJECT_ARN, {"Service": "bedrock.amazonaws.com"})),
                      bad)
    assert isinstance(verdict, dict) and verdict["gap"] is True and verdict["code"] == "MalformedPolicy"
    assert "six" in verdict["message"]


# ---------------------------------------------------------------------------------------------- KEYS

BEDROCK = bedrock_context(ACCOUNT, REGION)
IAM_ROLE: dict[str, Any] = {"aws:PrincipalIsAWSService": "false"}  # a role's request: signed, not a service
KEY_CASES = [
    # (name, condition, context, expected: an Allow with `condition` applies)
    # aws:PrincipalIsAWSService: "true when a service uses a service principal to perform a direct action".
    ("is-aws-service-true-for-bedrock", {"Bool": {"aws:PrincipalIsAWSService": "true"}}, BEDROCK, True),
    ("is-aws-service-false-for-a-role", {"Bool": {"aws:PrincipalIsAWSService": "true"}}, IAM_ROLE, False),
    # aws:PrincipalServiceName: "contains the name of the service principal".
    ("service-name-equals", {"StringEquals": {"aws:PrincipalServiceName": "bedrock.amazonaws.com"}}, BEDROCK, True),
    ("service-name-other-service", {"StringEquals": {"aws:PrincipalServiceName": "s3.amazonaws.com"}}, BEDROCK,
     False),
    ("service-name-absent-for-a-role", {"StringEquals": {"aws:PrincipalServiceName": "bedrock.amazonaws.com"}},
     IAM_ROLE, False),
    # aws:PrincipalServiceNamesList is multivalued: "You must use the ForAnyValue or ForAllValues set operators".
    ("names-list-for-any-value", {"ForAnyValue:StringEquals": {"aws:PrincipalServiceNamesList":
                                                               "bedrock.amazonaws.com"}}, BEDROCK, True),
    ("names-list-for-all-values", {"ForAllValues:StringLike": {"aws:PrincipalServiceNamesList": "*.amazonaws.com"}},
     BEDROCK, True),
    ("names-list-for-any-value-miss", {"ForAnyValue:StringEquals": {"aws:PrincipalServiceNamesList":
                                                                    "s3.amazonaws.com"}}, BEDROCK, False),
    ("names-list-single-valued-operator-undecidable",
     {"StringEquals": {"aws:PrincipalServiceNamesList": "bedrock.amazonaws.com"}}, BEDROCK, False),
    # aws:EpochTime: "the number of seconds since January 1, 1970", with numeric or date operators.
    ("epoch-numeric-seconds-before", {"NumericLessThan": {"aws:EpochTime": "1767225600"}},
     {"aws:EpochTime": "1764547200"}, True),
    ("epoch-numeric-seconds-after", {"NumericLessThan": {"aws:EpochTime": "1764547200"}},
     {"aws:EpochTime": "1767225600"}, False),
    ("epoch-date-operator-seconds", {"DateGreaterThan": {"aws:EpochTime": "1764547199"}},
     {"aws:EpochTime": "1764547200"}, True),
    ("epoch-date-operator-iso-value", {"DateLessThan": {"aws:EpochTime": "2026-12-31T00:00:00Z"}},
     {"aws:EpochTime": "1764547200"}, True),
    # Milliseconds are not seconds: 1764547200000 s is out of any date range, so the Allow does not apply.
    ("epoch-milliseconds-are-not-seconds", {"DateGreaterThan": {"aws:EpochTime": "1764547199000"}},
     {"aws:EpochTime": "1764547200"}, False),
]


@pytest.mark.parametrize(("condition", "context", "expected"),
                         [pytest.param(c, x, e, id=n) for n, c, x, e in KEY_CASES])
def test_condition_keys(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    request = Request("kms:GenerateDataKey", "*", None, context)
    verdict = decide([policy(stmt(Action="kms:GenerateDataKey", Resource="*", Condition=condition))], request)
    assert (verdict == "allow") is expected


def test_bedrock_context_carries_the_service_principal_keys() -> None:
    assert BEDROCK["aws:PrincipalIsAWSService"] == "true"
    assert BEDROCK["aws:PrincipalServiceName"] == "bedrock.amazonaws.com"
    assert list(BEDROCK["aws:PrincipalServiceNamesList"]) == ["bedrock.amazonaws.com"]
    assert BEDROCK["aws:SourceAccount"] == ACCOUNT
    assert "kms:CallerAccount" not in BEDROCK  # not documented for service principals: never assumed
