"""Table-driven tests of the policy analyzer: IAM evaluation semantics and the documented Bedrock policies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from audit_bedrock.analyzer import (
    Policy,
    PolicyError,
    Request,
    allows,
    confused_deputy_guarded,
    decide,
    matches,
    parse,
    trusts_service,
    unconditioned_public_grants,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
BUCKET = "bedrock-logs-bucket"
PREFIX = "invocations"
GROUP = "/aws/bedrock/modelinvocations"
BEDROCK = "bedrock.amazonaws.com"
BEDROCK_PRINCIPAL = {"Service": BEDROCK}
OBJECT_ARN = f"arn:aws:s3:::{BUCKET}/{PREFIX}/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/2024/01/01/x.json.gz"
DOCUMENTED_RESOURCE = f"arn:aws:s3:::{BUCKET}/{PREFIX}/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/*"
SOURCE_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:*"
STREAM_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:log-stream:aws/bedrock/modelinvocations"
GUARD = {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": SOURCE_ARN}}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**elements: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **elements}


def deny(**elements: Any) -> dict[str, Any]:
    return {"Effect": "Deny", **elements}


def bucket_stmt(action: Any = "s3:PutObject", resource: Any = DOCUMENTED_RESOURCE, principal: Any = None,
                condition: Any = None) -> dict[str, Any]:
    """The statement of the documented Bedrock bucket policy, with one element swapped out."""
    return allow(Sid="AmazonBedrockLogsWrite", Principal=BEDROCK_PRINCIPAL if principal is None else principal,
                 Action=action, Resource=resource, Condition=GUARD if condition is None else condition)


DOCUMENTED_BUCKET_POLICY = doc(bucket_stmt())
BEDROCK_PUT = Request("s3:PutObject", OBJECT_ARN, BEDROCK_PRINCIPAL,
                      {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": SOURCE_ARN})


def role_policy(*actions: str, resource: Any = STREAM_ARN) -> dict[str, Any]:
    return doc(allow(Action=list(actions) or ["logs:CreateLogStream", "logs:PutLogEvents"], Resource=resource))


def logs(action: str, resource: str = STREAM_ARN) -> Request:
    return Request(action, resource)


def swap(stmt: dict[str, Any], drop: str, **add: Any) -> dict[str, Any]:
    """`stmt` without element `drop` and with `add` (e.g. Principal swapped for NotPrincipal)."""
    return {**{k: v for k, v in stmt.items() if k != drop}, **add}


def with_bucket_policy(*extra: dict[str, Any]) -> dict[str, Any]:
    return doc(bucket_stmt(), *extra)


DECIDE_CASES = [
    # --- the documented Bedrock bucket policy and its variants
    pytest.param([DOCUMENTED_BUCKET_POLICY], BEDROCK_PUT, "allow", id="bucket-documented-policy-allows"),
    pytest.param([json.dumps(DOCUMENTED_BUCKET_POLICY)], BEDROCK_PUT, "allow", id="bucket-policy-as-json-string"),
    pytest.param([quote(json.dumps(DOCUMENTED_BUCKET_POLICY))], BEDROCK_PUT, "allow", id="policy-url-encoded-string"),
    pytest.param([doc(bucket_stmt(action="s3:*"))], BEDROCK_PUT, "allow", id="bucket-broader-action-s3-star"),
    pytest.param([doc(bucket_stmt(resource=f"arn:aws:s3:::{BUCKET}/*"))], BEDROCK_PUT, "allow",
                 id="bucket-broader-resource-bucket-star"),
    pytest.param([doc(bucket_stmt(action="*", resource="*", condition={}))], BEDROCK_PUT, "allow",
                 id="bucket-star-star-no-condition"),
    pytest.param([doc(bucket_stmt(resource=f"arn:aws:s3:::{BUCKET}/other/AWSLogs/{ACCOUNT}/*"))], BEDROCK_PUT,
                 "implicit_deny", id="bucket-wrong-prefix"),
    pytest.param([doc(bucket_stmt(resource="arn:aws:s3:::other-bucket/*"))], BEDROCK_PUT, "implicit_deny",
                 id="bucket-wrong-bucket"),
    pytest.param([doc(bucket_stmt(resource=f"arn:aws:s3:::{BUCKET}"))], BEDROCK_PUT, "implicit_deny",
                 id="bucket-arn-without-key-does-not-cover-objects"),
    pytest.param([doc(bucket_stmt(condition={"StringEquals": {"aws:SourceAccount": OTHER},
                                             "ArnLike": {"aws:SourceArn": SOURCE_ARN}}))],
                 BEDROCK_PUT, "implicit_deny", id="bucket-wrong-account-in-source-account"),
    pytest.param([doc(bucket_stmt(condition={"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                             "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{OTHER}:*"}}))],
                 BEDROCK_PUT, "implicit_deny", id="bucket-wrong-account-in-source-arn"),
    pytest.param([doc(bucket_stmt(condition={"ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:*"}}))],
                 BEDROCK_PUT, "implicit_deny", id="bucket-wrong-region-in-source-arn"),
    pytest.param([doc(bucket_stmt(action="s3:GetObject"))], BEDROCK_PUT, "implicit_deny", id="bucket-wrong-action"),
    pytest.param([with_bucket_policy(deny(Principal="*", Action="s3:PutObject", Resource=f"arn:aws:s3:::{BUCKET}/*"))],
                 BEDROCK_PUT, "explicit_deny", id="bucket-explicit-deny-wins"),
    pytest.param([DOCUMENTED_BUCKET_POLICY, doc(deny(Principal="*", Action="s3:*", Resource="*"))], BEDROCK_PUT,
                 "explicit_deny", id="deny-in-another-policy-wins"),
    pytest.param([with_bucket_policy(deny(Principal="*", Action="s3:PutObject",
                                          Resource=f"arn:aws:s3:::{BUCKET}/x/*"))],
                 BEDROCK_PUT, "allow", id="bucket-deny-on-other-prefix-does-not-apply"),
    pytest.param([with_bucket_policy(deny(Principal="*", Action="s3:PutObject", Resource="*",
                                          Condition={"Bool": {"aws:SecureTransport": "false"}}))],
                 BEDROCK_PUT, "allow", id="bucket-conditional-deny-not-met"),
    pytest.param([doc(bucket_stmt(principal={"Service": "logs.amazonaws.com"}))], BEDROCK_PUT, "implicit_deny",
                 id="principal-other-service"),
    pytest.param([doc(bucket_stmt(principal={"Service": ["logs.amazonaws.com", BEDROCK]}))], BEDROCK_PUT, "allow",
                 id="principal-service-list"),
    pytest.param([doc(bucket_stmt(principal="*"))], BEDROCK_PUT, "allow", id="principal-star-covers-service"),
    pytest.param([doc(bucket_stmt(principal={"AWS": "*"}))], BEDROCK_PUT, "allow",
                 id="principal-aws-star-covers-service"),
    pytest.param([doc(bucket_stmt(principal={"AWS": ["arn:aws:iam::111122223333:role/x", "*"]}))], BEDROCK_PUT,
                 "allow", id="principal-aws-list-with-star"),
    pytest.param([doc(bucket_stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))], BEDROCK_PUT,
                 "implicit_deny", id="principal-account-does-not-cover-service"),
    pytest.param([doc(allow(Principal={"AWS": ACCOUNT}, Action="s3:GetObject", Resource="*"))],
                 Request("s3:GetObject", OBJECT_ARN, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"}), "allow",
                 id="principal-account-id-delegates-to-its-roles"),
    pytest.param([doc(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/a"}, Action="s3:GetObject",
                            Resource="*"))],
                 Request("s3:GetObject", OBJECT_ARN, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/b"}), "implicit_deny",
                 id="principal-other-role"),
    pytest.param([doc(swap(bucket_stmt(), "Principal", NotPrincipal={"AWS": f"arn:aws:iam::{OTHER}:root"}))],
                 BEDROCK_PUT, "allow", id="notprincipal-allow-everyone-else"),
    pytest.param([doc(swap(bucket_stmt(), "Principal", NotPrincipal=BEDROCK_PRINCIPAL))], BEDROCK_PUT,
                 "implicit_deny", id="notprincipal-excludes-service"),
    pytest.param([with_bucket_policy(deny(NotPrincipal=BEDROCK_PRINCIPAL, Action="s3:*", Resource="*"))],
                 BEDROCK_PUT, "allow", id="notprincipal-deny-spares-service"),
    pytest.param([with_bucket_policy(deny(NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Action="s3:*",
                                          Resource="*"))],
                 BEDROCK_PUT, "explicit_deny", id="notprincipal-deny-hits-unlisted-service"),
    pytest.param([doc(allow(Action="s3:PutObject", Resource="*"))], BEDROCK_PUT, "implicit_deny",
                 id="missing-principal-allow-is-not-trusted"),
    pytest.param([with_bucket_policy(deny(Action="s3:PutObject", Resource="*"))], BEDROCK_PUT, "explicit_deny",
                 id="missing-principal-deny-is-conservative"),
    pytest.param([doc(allow(Action="s3:PutObject", Resource="*"))], Request("s3:PutObject", OBJECT_ARN), "allow",
                 id="identity-policy-ignores-principal"),
    pytest.param([None], BEDROCK_PUT, "implicit_deny", id="no-policy-is-implicit-deny"),
    pytest.param([], BEDROCK_PUT, "implicit_deny", id="no-policies-at-all"),
    pytest.param(DOCUMENTED_BUCKET_POLICY, BEDROCK_PUT, "allow", id="lone-policy-dict-accepted"),
    pytest.param([{"Statement": bucket_stmt()}], BEDROCK_PUT, "allow", id="statement-as-a-single-dict"),
    pytest.param([doc(allow(Action="s3:PutObject", Resource="*"))], BEDROCK_PUT, "implicit_deny",
                 id="allow-without-principal-for-service"),
    # --- the CloudWatch delivery role's permission policy
    pytest.param([role_policy()], logs("logs:CreateLogStream"), "allow", id="role-documented-create-log-stream"),
    pytest.param([role_policy()], logs("logs:PutLogEvents"), "allow", id="role-documented-put-log-events"),
    pytest.param([role_policy("logs:CreateLogStream")], logs("logs:PutLogEvents"), "implicit_deny",
                 id="role-missing-put-log-events"),
    pytest.param([role_policy(resource=STREAM_ARN.replace(GROUP, "/aws/other"))], logs("logs:PutLogEvents"),
                 "implicit_deny", id="role-points-at-another-log-group"),
    pytest.param([role_policy(resource=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}-prod:*")],
                 logs("logs:PutLogEvents"), "implicit_deny", id="role-group-name-prefix-is-not-the-group"),
    pytest.param([role_policy(resource=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:*")],
                 logs("logs:PutLogEvents"), "allow", id="role-group-star-covers-stream"),
    pytest.param([role_policy(resource=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}")],
                 logs("logs:PutLogEvents"), "implicit_deny", id="role-group-arn-without-star-misses-stream"),
    pytest.param([role_policy(resource=f"arn:aws:logs:*:{ACCOUNT}:log-group:*")], logs("logs:PutLogEvents"), "allow",
                 id="resource-star-spans-colons-and-slashes"),
    pytest.param([role_policy(resource=f"arn:aws:logs:us-east-?:{ACCOUNT}:*")], logs("logs:PutLogEvents"), "allow",
                 id="resource-question-mark-one-char"),
    pytest.param([role_policy(resource=f"arn:aws:logs:us-east-?:{ACCOUNT}:*")],
                 logs("logs:PutLogEvents", STREAM_ARN.replace("us-east-1", "us-east-10")), "implicit_deny",
                 id="resource-question-mark-not-two-chars"),
    pytest.param([role_policy(resource=STREAM_ARN.upper())], logs("logs:PutLogEvents"), "implicit_deny",
                 id="resource-case-sensitive"),
    pytest.param([doc(allow(Action="logs:*", Resource="*"))], logs("logs:PutLogEvents"), "allow",
                 id="role-logs-star-on-star"),
    pytest.param([doc(allow(Action="LOGS:putlogevents", Resource=STREAM_ARN))], logs("logs:PutLogEvents"), "allow",
                 id="action-case-insensitive"),
    pytest.param([doc(allow(Action="logs:Put*", Resource=STREAM_ARN))], logs("logs:PutLogEvents"), "allow",
                 id="action-star-wildcard"),
    pytest.param([doc(allow(Action="logs:PutLogEvent?", Resource=STREAM_ARN))], logs("logs:PutLogEvents"), "allow",
                 id="action-question-mark"),
    pytest.param([doc(allow(Action="logs:Put?", Resource=STREAM_ARN))], logs("logs:PutLogEvents"), "implicit_deny",
                 id="action-question-mark-one-char-only"),
    pytest.param([doc(allow(NotAction="iam:*", Resource="*"))], logs("logs:PutLogEvents"), "allow",
                 id="notaction-allows-everything-else"),
    pytest.param([doc(allow(NotAction=["logs:*", "s3:*"], Resource="*"))], logs("logs:PutLogEvents"),
                 "implicit_deny", id="notaction-excludes-action"),
    pytest.param([doc(allow(Action="logs:*", Resource="*"), deny(NotAction="logs:CreateLogStream", Resource="*"))],
                 logs("logs:PutLogEvents"), "explicit_deny", id="notaction-deny"),
    pytest.param([doc(allow(Action="logs:*", NotResource="arn:aws:logs:*:*:log-group:/aws/other:*"))],
                 logs("logs:PutLogEvents"), "allow", id="notresource-allows-other-resources"),
    pytest.param([doc(allow(Action="logs:*", NotResource=f"arn:aws:logs:*:*:log-group:{GROUP}:*"))],
                 logs("logs:PutLogEvents"), "implicit_deny", id="notresource-excludes-resource"),
    pytest.param([doc(allow(Action="logs:*", Resource="*"),
                      deny(Action="logs:*", NotResource="arn:aws:logs:*:*:log-group:/aws/other:*"))],
                 logs("logs:PutLogEvents"), "explicit_deny", id="notresource-deny-everything-else"),
    pytest.param([role_policy("logs:CreateLogStream"), role_policy("logs:PutLogEvents")], logs("logs:PutLogEvents"),
                 "allow", id="inline-and-managed-policies-union"),
    pytest.param([role_policy(), doc(deny(Action="logs:PutLogEvents", Resource="*"))], logs("logs:PutLogEvents"),
                 "explicit_deny", id="managed-deny-overrides-inline-allow"),
    pytest.param([doc(allow(Resource="*"))], logs("logs:PutLogEvents"), "implicit_deny",
                 id="allow-without-action-grants-nothing"),
    pytest.param([role_policy(), doc(deny(Resource="*"))], logs("logs:PutLogEvents"), "explicit_deny",
                 id="deny-without-action-is-conservative"),
    pytest.param([role_policy(resource="arn:aws:logs:*:*:log-group:${aws:PrincipalTag/group}:*")],
                 logs("logs:PutLogEvents"), "implicit_deny", id="policy-variable-allow-is-not-trusted"),
    pytest.param([role_policy(), doc(deny(Action="*", Resource="arn:aws:logs:*:*:log-group:${aws:username}:*"))],
                 logs("logs:PutLogEvents"), "explicit_deny", id="policy-variable-deny-is-conservative"),
    pytest.param([doc({"Effect": "allow", "Action": "logs:*", "Resource": "*"})], logs("logs:PutLogEvents"), "allow",
                 id="effect-case-normalized"),
]


@pytest.mark.parametrize(("policies", "request_", "expected"), DECIDE_CASES)
def test_decide(policies: Any, request_: Request, expected: str) -> None:
    assert decide(policies, request_) == expected
    assert allows(policies, request_) is (expected == "allow")


def cond(condition: dict[str, Any], context: dict[str, Any], expected: bool, case_id: str) -> Any:
    return pytest.param(condition, context, expected, id=case_id)


SA = "aws:SourceAccount"
TAGS = "aws:TagKeys"
CONDITION_CASES = [
    cond({"StringEquals": {SA: ACCOUNT}}, {SA: ACCOUNT}, True, "string-equals-match"),
    cond({"StringEquals": {SA: ACCOUNT}}, {SA: OTHER}, False, "string-equals-mismatch"),
    cond({"StringEquals": {SA: ACCOUNT}}, {}, False, "string-equals-missing-key-false"),
    cond({"StringEquals": {SA: [OTHER, ACCOUNT]}}, {SA: ACCOUNT}, True, "values-of-one-key-are-ored"),
    cond({"StringEquals": {"aws:PrincipalTag/team": "Blue"}}, {"aws:PrincipalTag/team": "blue"}, False,
         "string-equals-value-case-sensitive"),
    cond({"StringEquals": {"AWS:SOURCEACCOUNT": ACCOUNT}}, {SA: ACCOUNT}, True, "condition-key-case-insensitive"),
    cond({"StringEquals": {SA: ACCOUNT, "aws:SourceArn": SOURCE_ARN}}, {SA: ACCOUNT}, False, "keys-are-anded"),
    cond({"StringEquals": {SA: ACCOUNT}, "Bool": {"aws:SecureTransport": "true"}},
         {SA: ACCOUNT, "aws:SecureTransport": "false"}, False, "operators-are-anded"),
    cond({"StringNotEquals": {SA: ACCOUNT}}, {SA: OTHER}, True, "string-not-equals-mismatch-true"),
    cond({"StringNotEquals": {SA: ACCOUNT}}, {SA: ACCOUNT}, False, "string-not-equals-equal-false"),
    cond({"StringNotEquals": {SA: ACCOUNT}}, {}, True, "string-not-equals-missing-key-true"),
    cond({"StringNotEquals": {SA: [ACCOUNT, OTHER]}}, {SA: OTHER}, False, "string-not-equals-any-listed-value"),
    cond({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}, {"aws:PrincipalTag/team": "blue"}, True,
         "string-equals-ignore-case"),
    cond({"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}, {"aws:PrincipalTag/team": "blue"}, False,
         "string-not-equals-ignore-case"),
    cond({"StringLike": {"s3:prefix": "logs/*"}}, {"s3:prefix": "logs/2024/x"}, True, "string-like-star"),
    cond({"StringLike": {"s3:prefix": "log?"}}, {"s3:prefix": "logs"}, True, "string-like-question-mark"),
    cond({"StringLike": {"s3:prefix": "log?"}}, {"s3:prefix": "log"}, False, "string-like-question-needs-a-char"),
    cond({"StringNotLike": {"s3:prefix": "logs/*"}}, {"s3:prefix": "other/x"}, True, "string-not-like"),
    cond({"StringNotLike": {"s3:prefix": "logs/*"}}, {}, True, "string-not-like-missing-key-true"),
    cond({"StringEquals": {"s3:prefix": "logs/*"}}, {"s3:prefix": "logs/x"}, False, "string-equals-no-wildcards"),
    cond({"ArnLike": {"aws:SourceArn": SOURCE_ARN}}, {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:x/y"},
         True, "arn-like-match"),
    cond({"ArnLike": {"aws:SourceArn": SOURCE_ARN}}, {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{OTHER}:x"},
         False, "arn-like-other-account"),
    cond({"ArnEquals": {"aws:SourceArn": f"arn:aws:bedrock:*:{ACCOUNT}:*"}},
         {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:x"}, True, "arn-equals-allows-wildcards"),
    cond({"ArnLike": {"aws:SourceArn": "arn:aws:*"}}, {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:x"},
         False, "arn-like-matches-six-components-separately"),
    cond({"ArnLike": {"aws:SourceArn": SOURCE_ARN}}, {"aws:SourceArn": "not-an-arn"}, False, "arn-like-non-arn"),
    cond({"ArnLike": {"aws:SourceArn": SOURCE_ARN}}, {}, False, "arn-like-missing-key-false"),
    cond({"ArnNotLike": {"aws:SourceArn": SOURCE_ARN}}, {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{OTHER}:x"},
         True, "arn-not-like-other"),
    cond({"ArnNotEquals": {"aws:SourceArn": SOURCE_ARN}}, {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:x"},
         False, "arn-not-equals-same"),
    cond({"ArnNotLike": {"aws:SourceArn": SOURCE_ARN}}, {}, True, "arn-not-like-missing-key-true"),
    cond({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, True, "bool-true"),
    cond({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "TRUE"}, True, "bool-json-literal"),
    cond({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False, "bool-false"),
    cond({"Bool": {"aws:SecureTransport": "true"}}, {}, False, "bool-missing-key-false"),
    cond({"Null": {"aws:TokenIssueTime": "true"}}, {}, True, "null-true-missing"),
    cond({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": "x"}, False, "null-true-present"),
    cond({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": "x"}, True, "null-false-present"),
    cond({"Null": {"aws:TokenIssueTime": False}}, {}, False, "null-false-missing"),
    cond({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True, "numeric-equals"),
    cond({"NumericEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "10.0"}, True, "numeric-equals-json-number"),
    cond({"NumericNotEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, True, "numeric-not-equals"),
    cond({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "9"}, True, "numeric-less-than"),
    cond({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, False, "numeric-less-than-strict"),
    cond({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True, "numeric-less-equals"),
    cond({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, True, "numeric-greater-than"),
    cond({"NumericGreaterThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "9"}, False, "numeric-greater-equals"),
    cond({"NumericEquals": {"s3:max-keys": "ten"}}, {"s3:max-keys": "10"}, False, "numeric-unparseable-allow-no"),
    cond({"DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, {"aws:CurrentTime": "2024-06-01T00:00:00Z"},
         True, "date-greater-than"),
    cond({"DateLessThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, {"aws:CurrentTime": "1719792000"}, False,
         "date-epoch-context"),
    cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True, "ip-address-in"),
    cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.0.1"}, False, "ip-address-out"),
    cond({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.0.1"}, True, "not-ip-address"),
    cond({"StringEqualsIfExists": {SA: ACCOUNT}}, {}, True, "if-exists-missing-key-true"),
    cond({"StringEqualsIfExists": {SA: ACCOUNT}}, {SA: OTHER}, False, "if-exists-present-mismatch"),
    cond({"StringEqualsIfExists": {SA: ACCOUNT}}, {SA: ACCOUNT}, True, "if-exists-present-match"),
    cond({"StringNotEqualsIfExists": {SA: ACCOUNT}}, {SA: ACCOUNT}, False, "not-equals-if-exists-present"),
    cond({"ArnLikeIfExists": {"aws:SourceArn": SOURCE_ARN}}, {}, True, "arn-like-if-exists-missing"),
    cond({"ForAnyValue:StringEquals": {TAGS: ["a", "b"]}}, {TAGS: ["x", "b"]}, True, "for-any-value-one-hit"),
    cond({"ForAnyValue:StringEquals": {TAGS: ["a", "b"]}}, {TAGS: ["x", "y"]}, False, "for-any-value-no-hit"),
    cond({"ForAnyValue:StringEquals": {TAGS: ["a"]}}, {}, False, "for-any-value-missing-key-false"),
    cond({"ForAnyValue:StringNotEquals": {TAGS: ["a"]}}, {TAGS: ["a", "z"]}, True, "for-any-value-negated"),
    cond({"ForAllValues:StringEquals": {TAGS: ["a", "b"]}}, {TAGS: ["a", "b"]}, True, "for-all-values-all-in"),
    cond({"ForAllValues:StringEquals": {TAGS: ["a", "b"]}}, {TAGS: ["a", "z"]}, False, "for-all-values-one-out"),
    cond({"ForAllValues:StringEquals": {TAGS: ["a"]}}, {}, True, "for-all-values-missing-key-true"),
    cond({"ForAllValues:StringLike": {TAGS: ["team-*"]}}, {TAGS: "team-a"}, True, "for-all-values-single-string"),
    cond({"StringEquals": {TAGS: "a"}}, {TAGS: ["z", "a"]}, True, "plain-operator-multivalued-context"),
    cond({"StringEqualz": {SA: ACCOUNT}}, {SA: ACCOUNT}, False, "unknown-operator-allow-does-not-match"),
    cond({"ForSomeValues:StringEquals": {SA: ACCOUNT}}, {SA: ACCOUNT}, False, "unknown-qualifier-allow-no"),
    cond({"StringEquals": {SA: "${aws:PrincipalAccount}"}}, {SA: ACCOUNT}, False, "policy-variable-value-allow-no"),
]


@pytest.mark.parametrize(("condition", "context", "expected"), CONDITION_CASES)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    policy = doc(allow(Action="s3:GetObject", Resource="*", Condition=condition))
    assert allows([policy], Request("s3:GetObject", OBJECT_ARN, context=context)) is expected


UNDECIDABLE_DENY_CASES = [
    pytest.param({"StringEqualz": {SA: ACCOUNT}}, id="unknown-operator"),
    pytest.param({"ForSomeValues:StringEquals": {SA: ACCOUNT}}, id="unknown-qualifier"),
    pytest.param({"NumericLessThan": {"s3:max-keys": "many"}}, id="value-of-wrong-type"),
    pytest.param({"NullIfExists": {SA: "true"}}, id="null-with-if-exists"),
    pytest.param({"StringLike": {SA: "${aws:PrincipalAccount}"}}, id="policy-variable"),
]


@pytest.mark.parametrize("condition", UNDECIDABLE_DENY_CASES)
def test_undecidable_condition_makes_a_deny_apply(condition: dict[str, Any]) -> None:
    """An Allow whose condition cannot be decided does not allow; such a Deny does deny (documented choice)."""
    request = Request("s3:GetObject", OBJECT_ARN, context={SA: ACCOUNT, "s3:max-keys": "5"})
    base = allow(Action="s3:*", Resource="*")
    assert decide([doc(base)], request) == "allow"
    assert decide([doc(base, deny(Action="s3:*", Resource="*", Condition=condition))], request) == "explicit_deny"
    assert decide([doc(allow(Action="s3:*", Resource="*", Condition=condition))], request) == "implicit_deny"


MATCH_CASES = [
    pytest.param("*", "", False, True, id="star-matches-empty"),
    pytest.param("*", "arn:aws:s3:::b/k", False, True, id="star-matches-anything"),
    pytest.param("a*c", "abbbc", False, True, id="star-run"),
    pytest.param("a*c", "ac", False, True, id="star-empty-run"),
    pytest.param("a*c", "acb", False, False, id="star-anchored-end"),
    pytest.param("a?c", "abc", False, True, id="question-one-char"),
    pytest.param("a?c", "ac", False, False, id="question-not-zero-chars"),
    pytest.param("a?c", "abbc", False, False, id="question-not-two-chars"),
    pytest.param("a.c", "abc", False, False, id="dot-is-literal"),
    pytest.param("[ab]", "a", False, False, id="brackets-are-literal"),
    pytest.param("a+", "aa", False, False, id="plus-is-literal"),
    pytest.param("S3:Get*", "s3:getobject", False, False, id="case-sensitive-by-default"),
    pytest.param("S3:Get*", "s3:getobject", True, True, id="ignore-case"),
    pytest.param("*a*a*a*a*b", "a" * 200, False, False, id="no-catastrophic-backtracking"),
    pytest.param("**?", "x", False, True, id="stars-then-question"),
]


@pytest.mark.parametrize(("pattern", "value", "ignore_case", "expected"), MATCH_CASES)
def test_matches(pattern: str, value: str, ignore_case: bool, expected: bool) -> None:
    assert matches(pattern, value, ignore_case=ignore_case) is expected


PARSE_CASES = [
    pytest.param(None, [], id="none-is-empty"),
    pytest.param({"Statement": []}, [], id="empty-statement-list"),
    pytest.param({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}},
                 [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"], "Condition": {}}],
                 id="strings-become-lists"),
    pytest.param('{"Statement": [{"Sid": "S", "Effect": "Deny", "Principal": "*", "NotAction": ["a:b"]}]}',
                 [{"Sid": "S", "Effect": "Deny", "Principal": {"AWS": ["*"]}, "NotAction": ["a:b"], "Condition": {}}],
                 id="json-string-principal-star-normalized"),
    pytest.param(quote('{"Statement": {"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "sts:AssumeRole",'
                       ' "Condition": {"Bool": {"k": true}, "NumericEquals": {"n": [1, 2]}}}}'),
                 [{"Effect": "Allow", "Principal": {"Service": ["x"]}, "Action": ["sts:AssumeRole"],
                   "Condition": {"Bool": {"k": ["true"]}, "NumericEquals": {"n": ["1", "2"]}}}],
                 id="url-encoded-with-scalar-condition-values"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "a:b", "Principal": {"AWS": 111122223333}}]},
                 [{"Effect": "Allow", "Action": ["a:b"], "Principal": {"AWS": ["111122223333"]}, "Condition": {}}],
                 id="numeric-account-principal"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "a:b", "Unknown": 1, "Condition": None}]},
                 [{"Effect": "Allow", "Action": ["a:b"], "Condition": {}}], id="unknown-elements-ignored"),
]


@pytest.mark.parametrize(("policy", "expected"), PARSE_CASES)
def test_parse(policy: Policy, expected: list[dict[str, Any]]) -> None:
    assert parse(policy) == expected


GARBAGE = [
    pytest.param("", id="empty-string"),
    pytest.param("not json", id="not-json"),
    pytest.param("%7Bbroken", id="bad-url-encoding"),
    pytest.param("[1, 2]", id="json-array"),
    pytest.param({}, id="no-statement"),
    pytest.param({"Statement": 5}, id="statement-number"),
    pytest.param({"Statement": ["x"]}, id="statement-item-string"),
    pytest.param({"Statement": [{"Effect": "Maybe", "Action": "a:b"}]}, id="bad-effect"),
    pytest.param({"Statement": [{"Action": "a:b"}]}, id="missing-effect"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": 5.5j}]}, id="action-wrong-type"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": [["a"]]}]}, id="action-nested-list"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "a", "NotAction": "b"}]}, id="action-and-notaction"),
    pytest.param({"Statement": [{"Effect": "Allow", "Principal": 5, "Action": "a"}]}, id="principal-wrong-type"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "a", "Condition": ["x"]}]}, id="condition-list"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "a", "Condition": {"StringEquals": "x"}}]},
                 id="condition-block-not-object"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "a", "Condition": {"StringEquals": {"k": None}}}]},
                 id="condition-value-null"),
    pytest.param(42, id="not-a-policy-type"),
]


@pytest.mark.parametrize("policy", GARBAGE)
def test_parse_rejects_garbage(policy: Any) -> None:
    with pytest.raises(PolicyError):
        parse(policy)
    with pytest.raises(PolicyError):
        decide([policy], BEDROCK_PUT)


TRUST = "sts:AssumeRole"
DOCUMENTED_TRUST = doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST, Condition=GUARD))
UNGUARDED_TRUST = doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST))
TRUST_CASES = [
    pytest.param(DOCUMENTED_TRUST, True, id="documented-trust-with-conditions"),
    pytest.param(UNGUARDED_TRUST, True, id="trust-without-conditions"),
    pytest.param(json.dumps(DOCUMENTED_TRUST), True, id="trust-json-string"),
    pytest.param(quote(json.dumps(DOCUMENTED_TRUST)), True, id="trust-url-encoded"),
    pytest.param(doc(allow(Principal={"Service": "ec2.amazonaws.com"}, Action=TRUST)), False, id="other-service"),
    pytest.param(doc(allow(Principal={"Service": ["ec2.amazonaws.com", BEDROCK]}, Action=TRUST)), True,
                 id="service-list"),
    pytest.param(doc(allow(Principal="*", Action=TRUST)), True, id="principal-star"),
    pytest.param(doc(allow(Principal={"AWS": "*"}, Action=TRUST)), True, id="principal-aws-star"),
    pytest.param(doc(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Action=TRUST)), False,
                 id="account-principal-only"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action="sts:*")), True, id="action-wildcard"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action="sts:TagSession")), False, id="other-action"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, NotAction="sts:TagSession")), True, id="notaction"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST),
                     deny(Principal=BEDROCK_PRINCIPAL, Action=TRUST)), False, id="unconditional-deny-wins"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST),
                     deny(Principal="*", Action="sts:*")), False, id="unconditional-deny-everyone-wins"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST),
                     deny(Principal=BEDROCK_PRINCIPAL, Action=TRUST, Condition={"StringNotEquals": {SA: ACCOUNT}})),
                 True, id="conditional-deny-does-not-remove-trust"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST),
                     deny(NotPrincipal=BEDROCK_PRINCIPAL, Action=TRUST)), True, id="deny-notprincipal-spares-service"),
    pytest.param(doc(allow(NotPrincipal={"AWS": f"arn:aws:iam::{OTHER}:root"}, Action=TRUST)), True,
                 id="allow-notprincipal-covers-service"),
    pytest.param(doc(allow(Action=TRUST)), False, id="allow-without-principal"),
    pytest.param(None, False, id="no-trust-policy"),
]


@pytest.mark.parametrize(("policy", "expected"), TRUST_CASES)
def test_trusts_service(policy: Policy, expected: bool) -> None:
    assert trusts_service(policy, BEDROCK) is expected


def test_trusts_service_other_action() -> None:
    kms = doc(allow(Principal=BEDROCK_PRINCIPAL, Action=["kms:GenerateDataKey*", "kms:Decrypt"], Resource="*"))
    assert trusts_service(kms, BEDROCK, "kms:GenerateDataKey") is True
    assert trusts_service(kms, BEDROCK, "kms:Encrypt") is False


def guarded(condition: dict[str, Any]) -> dict[str, Any]:
    return doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST, Condition=condition))


DEPUTY_CASES = [
    pytest.param(DOCUMENTED_TRUST, True, id="both-conditions"),
    pytest.param(guarded({"StringEquals": {SA: ACCOUNT}}), True, id="source-account-only"),
    pytest.param(guarded({"ArnLike": {"aws:SourceArn": SOURCE_ARN}}), True, id="source-arn-only"),
    pytest.param(guarded({"ArnEquals": {"aws:sourcearn": SOURCE_ARN}}), True, id="key-case-insensitive"),
    pytest.param(guarded({"StringEquals": {"aws:SourceOrgID": "o-abc"}}), True, id="source-org-id"),
    pytest.param(guarded({"ForAnyValue:StringLike": {"aws:SourceOrgPaths": "o-abc/r-1/*"}}), True,
                 id="source-org-paths"),
    pytest.param(UNGUARDED_TRUST, False, id="no-condition"),
    pytest.param(guarded({"Bool": {"aws:SecureTransport": "true"}}), False, id="unrelated-condition"),
    pytest.param(guarded({"StringNotEquals": {SA: OTHER}}), False, id="negated-allow-is-no-guard"),
    pytest.param(guarded({"StringEqualsIfExists": {SA: ACCOUNT}}), False, id="if-exists-is-no-guard"),
    pytest.param(guarded({"StringLike": {SA: "*"}}), False, id="wildcard-only-value"),
    pytest.param(guarded({"Null": {SA: "false"}}), False, id="null-check-is-no-guard"),
    pytest.param(guarded({"ForAllValues:StringEquals": {SA: ACCOUNT}}), False, id="for-all-values-is-no-guard"),
    pytest.param(guarded({"ForSome:StringEquals": {SA: ACCOUNT}}), False, id="unknown-qualifier-is-no-guard"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST, Condition=GUARD),
                     allow(Principal={"Service": [BEDROCK]}, Action="sts:*")), False, id="one-granting-stmt-unguarded"),
    pytest.param(doc(allow(Principal=BEDROCK_PRINCIPAL, Action=TRUST, Condition=GUARD),
                     allow(Principal={"Service": "ec2.amazonaws.com"}, Action=TRUST)), True,
                 id="other-service-unguarded-is-irrelevant"),
    pytest.param(doc(allow(Principal="*", Action=TRUST)), False, id="public-trust-unguarded"),
    pytest.param(doc(UNGUARDED_TRUST["Statement"][0],
                     deny(Principal=BEDROCK_PRINCIPAL, Action=TRUST, Condition={"StringNotEquals": {SA: ACCOUNT}})),
                 True, id="guard-expressed-as-deny"),
    pytest.param(doc(UNGUARDED_TRUST["Statement"][0],
                     deny(Principal=BEDROCK_PRINCIPAL, Action=TRUST,
                          Condition={"StringNotEquals": {SA: ACCOUNT}, "Bool": {"aws:SecureTransport": "false"}})),
                 False, id="deny-guard-weakened-by-extra-condition"),
    pytest.param(doc(allow(Principal={"Service": "ec2.amazonaws.com"}, Action=TRUST)), True,
                 id="nothing-grants-the-service"),
    pytest.param(None, True, id="no-policy"),
]


@pytest.mark.parametrize(("policy", "expected"), DEPUTY_CASES)
def test_confused_deputy_guarded(policy: Policy, expected: bool) -> None:
    assert confused_deputy_guarded(policy, BEDROCK) is expected


def public(action: Any = "s3:GetObject", principal: Any = "*", condition: Any = None, sid: str | None = "Public",
           **extra: Any) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action,
                            "Resource": f"arn:aws:s3:::{BUCKET}/*", **extra}
    if sid:
        stmt["Sid"] = sid
    if condition is not None:
        stmt["Condition"] = condition
    return stmt


CLOUDFRONT_ARN = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1"
PUBLIC_CASES = [
    pytest.param(doc(public()), ["Public"], id="star-get-object"),
    pytest.param(doc(public(action="s3:ListBucket", principal={"AWS": "*"}, sid=None)), ["Statement[0]"],
                 id="aws-star-list-bucket-no-sid"),
    pytest.param(doc(public(principal={"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "*"]})), ["Public"],
                 id="principal-list-with-star"),
    pytest.param(doc(public(action="s3:*")), ["Public"], id="s3-star"),
    pytest.param(doc(public(action="*")), ["Public"], id="star-action"),
    pytest.param(doc(public(action="s3:Get*")), ["Public"], id="s3-get-star"),
    pytest.param(doc(public(action="S3:GETOBJECTVERSION")), ["Public"], id="any-get-action-case-insensitive"),
    pytest.param(doc(public(action=["s3:PutObject", "s3:List*"])), ["Public"], id="list-in-action-list"),
    pytest.param(doc(public(action="s3:PutObject")), [], id="put-only-is-not-a-read"),
    pytest.param(doc(public(action="s3:Put*")), [], id="put-star-is-not-a-read"),
    pytest.param(doc(swap(public(), "Action", NotAction="s3:Put*")), ["Public"],
                 id="notaction-leaves-reads"),
    pytest.param(doc(swap(public(), "Action", NotAction="s3:*")), [],
                 id="notaction-excludes-all-s3"),
    pytest.param(doc(swap(public(), "Action", NotAction=["s3:Get*", "s3:List*"])), [],
                 id="notaction-excludes-reads"),
    pytest.param(doc(public(condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})), [], id="vpce-condition"),
    pytest.param(doc(public(condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})), [], id="org-condition"),
    pytest.param(doc(public(condition={"ArnLike": {"aws:SourceArn": SOURCE_ARN}})), ["Public"],
                 id="wildcard-source-arn-is-not-fixed"),
    pytest.param(doc(public(condition={"ArnEquals": {"aws:SourceArn": CLOUDFRONT_ARN}})), [], id="fixed-source-arn"),
    pytest.param(doc(public(condition={"StringLike": {"aws:userid": "AROAEXAMPLE:*"}})), [], id="userid-role-pattern"),
    pytest.param(doc(public(condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})), [], id="ip-range"),
    pytest.param(doc(public(condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})), ["Public"], id="ip-everywhere"),
    pytest.param(doc(public(condition={"Bool": {"aws:SecureTransport": "true"}})), ["Public"],
                 id="secure-transport-is-not-a-restriction"),
    pytest.param(doc(public(condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}})), ["Public"],
                 id="negated-condition-is-not-a-restriction"),
    pytest.param(doc(public(condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-abc"}})), ["Public"],
                 id="if-exists-is-not-a-restriction"),
    pytest.param(doc(public(condition={"StringLike": {"aws:PrincipalOrgID": "*"}})), ["Public"],
                 id="wildcard-org-is-not-a-restriction"),
    pytest.param(doc(public(condition={"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-abc"}})), ["Public"],
                 id="for-all-values-is-not-a-restriction"),
    pytest.param(doc(public(condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"},
                                       "Bool": {"aws:SecureTransport": "true"}})), [],
                 id="one-restricting-key-among-others"),
    pytest.param(doc(public(principal={"AWS": f"arn:aws:iam::{OTHER}:root"})), [], id="account-principal"),
    pytest.param(doc(public(principal=BEDROCK_PRINCIPAL)), [], id="service-principal"),
    pytest.param(doc({**public(), "Effect": "Deny"}), [], id="deny-is-not-a-grant"),
    pytest.param(doc(swap(public(), "Principal", NotPrincipal={"AWS": f"arn:aws:iam::{OTHER}:root"})), ["Public"],
                 id="allow-notprincipal-is-public"),
    pytest.param(doc(public(sid="A"), bucket_stmt(), public(action="s3:ListBucket", sid=None)),
                 ["A", "Statement[2]"], id="several-statements-in-order"),
    pytest.param(DOCUMENTED_BUCKET_POLICY, [], id="documented-bedrock-policy"),
    pytest.param(None, [], id="no-policy"),
]


@pytest.mark.parametrize(("policy", "expected"), PUBLIC_CASES)
def test_unconditioned_public_grants(policy: Policy, expected: list[str]) -> None:
    assert unconditioned_public_grants(policy) == expected
