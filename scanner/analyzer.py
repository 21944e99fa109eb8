"""IAM and bucket/key policy evaluation for the questions the rules ask; answers become derived facts.

Semantics follow IAM's single-policy-set evaluation: an explicit Deny wins, otherwise any matching Allow
allows, otherwise the request is implicitly denied. When a statement cannot be decided (an unknown condition
operator or qualifier, a condition value that does not fit its operator's type, a policy variable such as
``${aws:username}``, a statement with no Action/NotAction, or a statement without Principal/NotPrincipal
evaluated for a principal), the analyzer is conservative both ways: such an Allow does not match and such
a Deny does match. A single-valued operator on a multivalued key (aws:PrincipalServiceNamesList) is
undecidable. An entry IAM refuses (an action with a wildcard or nothing in its service namespace,
`*:GetBucket`; an ARN pattern with fewer than six colon-separated fields or a wildcard in its service
field) matches nothing in an Allow's Action or Resource, where that can only narrow the grant; in a Deny,
a NotAction or a NotResource it would widen what is allowed, so parse() raises PolicyError and every fact
derived from the policy is a gap. PolicyError is otherwise raised only for unparseable input.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote

from audit_bedrock.constants import ACCOUNT_ID_RE

Policy = str | Mapping[str, Any] | None
Decision = Literal["allow", "explicit_deny", "implicit_deny"]

_Tri = bool | None  # True / False / cannot be decided
_Context = dict[str, list[str]]
_ROOT_ARN = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")
_GUARD_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths"})
# Keys that make a grant to a public principal non-public when pinned to fixed values (S3 user guide,
# "The meaning of 'public'": an AWS principal, user, role or service principal such as aws:PrincipalOrgID;
# aws:SourceArn, aws:SourceVpc, aws:SourceVpce, aws:SourceOwner, aws:SourceAccount,
# s3:x-amz-server-side-encryption-aws-kms-key-id, aws:userid outside AROLEID:*, s3:DataAccessPointArn,
# s3:DataAccessPointAccount), plus aws:SourceIp handled separately. Keys the guide does not list (e.g.
# aws:SourceOrgID) do not count: an unlisted key leaves the grant public, as S3 assumes.
_RESTRICTING_KEYS = frozenset({
    "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceowner", "aws:sourceaccount", "aws:userid",
    "aws:principalarn", "aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths",
    "aws:principalservicename", "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:dataaccesspointarn", "s3:dataaccesspointaccount",
})
# Concrete S3 actions that change or remove data or its protection: a public grant of any is a public write.
WRITE_ACTIONS = (
    "s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectTagging", "s3:PutObjectRetention", "s3:PutObjectLegalHold",
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:RestoreObject",
    "s3:ReplicateObject", "s3:ReplicateDelete", "s3:BypassGovernanceRetention", "s3:DeleteBucket",
    "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketAcl", "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration", "s3:PutReplicationConfiguration",
)
_READ_PREFIXES = ("s3:get", "s3:list")
# Multivalued global condition keys ("AWS global condition context keys": "You must use the ForAnyValue or
# ForAllValues set operators"); a single-valued operator on one of them is undecidable.
_MULTIVALUED_KEYS = frozenset({"aws:principalservicenameslist", "aws:calledvia", "aws:tagkeys"})


class PolicyError(ValueError):
    """A policy document that cannot be parsed (not JSON, or not shaped like an IAM policy)."""


@dataclass(frozen=True)
class Request:
    """One request to evaluate: who (optional) does what on which resource, with which condition keys."""

    action: str
    resource: str
    principal: Mapping[str, str] | None = None
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- parsing

def parse(policy: Policy) -> list[dict[str, Any]]:
    """Normalize a policy into its Statement list; raise PolicyError on unparseable input.

    Every statement has "Effect" ("Allow"/"Deny") and "Condition" ({operator: {key: [str, ...]}}); the
    Action/NotAction/Resource/NotResource elements present become lists of strings; Principal/NotPrincipal
    become {type: [str, ...]} with "*" as {"AWS": ["*"]}; "Sid" is kept when present. None gives [].
    """
    doc = _load(policy)
    if doc is None:
        return []
    statements = doc.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError("policy has no Statement list")
    return [_statement(s, i) for i, s in enumerate(statements)]


def _load(policy: Policy) -> Mapping[str, Any] | None:
    if policy is None:
        return None
    if isinstance(policy, str):
        doc: Any = None
        for text in (policy, unquote(policy)):
            try:
                doc = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
        else:
            raise PolicyError("policy is not JSON (nor URL-encoded JSON)")
        policy = doc
    if not isinstance(policy, Mapping):
        raise PolicyError(f"policy must be a JSON object, not {type(policy).__name__}")
    return policy


def _statement(raw: Any, index: int) -> dict[str, Any]:
    where = f"Statement[{index}]"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where} is not an object")
    effect = raw.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        raise PolicyError(f"{where}: Effect must be Allow or Deny, not {effect!r}")
    out: dict[str, Any] = {"Effect": effect.capitalize()}
    if "Sid" in raw:
        out["Sid"] = str(raw["Sid"])
    for pos, neg in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
        if pos in raw and neg in raw:
            raise PolicyError(f"{where} has both {pos} and {neg}")
        for name in (pos, neg):
            if name in raw:
                out[name] = _principal(raw[name], where) if pos == "Principal" else _strings(raw[name], where, name)
    # An entry IAM refuses matches nothing where that can only narrow a grant (an Allow's Action or Resource).
    # Anywhere else (a Deny, NotAction, NotResource) matching nothing would widen what is allowed: not evaluated.
    for name in ("Action", "NotAction", "Resource", "NotResource"):
        if out["Effect"] == "Allow" and not name.startswith("Not"):
            continue
        for pattern in out.get(name, ()):
            problem = action_pattern_problem(pattern) if name.endswith("Action") else arn_pattern_problem(pattern)
            if problem:
                raise PolicyError(f"{where} ({out.get('Sid') or 'no Sid'}): {name} {problem}; IAM refuses such "
                                  "an entry and reading it as matching nothing would over-grant")
    condition = raw.get("Condition") or {}
    if not isinstance(condition, Mapping):
        raise PolicyError(f"{where}: Condition must be an object")
    out["Condition"] = {}
    for op, block in condition.items():
        if not isinstance(block, Mapping):
            raise PolicyError(f"{where}: Condition {op} must be an object of keys")
        out["Condition"][str(op)] = {str(k): _strings(v, where, f"Condition {op} {k}") for k, v in block.items()}
    return out


def _strings(value: Any, where: str, name: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise PolicyError(f"{where}: {name} must be a string or a list of strings")
    return out


def _principal(value: Any, where: str) -> dict[str, list[str]]:
    if isinstance(value, str):  # "*" (or, leniently, a bare principal string)
        return {"AWS": [value]}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: Principal must be \"*\" or an object")
    return {str(k): _strings(v, where, f"Principal {k}") for k, v in value.items()}


# ---------------------------------------------------------------------------------------------- wildcards

def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match of the whole value: `*` matches any run of characters, `?` exactly one."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return len(pattern) in _glob_states(pattern, value)


def _glob_states(pattern: str, text: str) -> set[int]:
    """Positions of `pattern` reachable after reading all of `text` (no backtracking, O(len*len))."""
    states = _skip_stars(pattern, {0})
    for ch in text:
        step = set()
        for i in states:
            if i < len(pattern):
                if pattern[i] == "*":
                    step.add(i)
                elif pattern[i] in ("?", ch):
                    step.add(i + 1)
        if not step:
            return step
        states = _skip_stars(pattern, step)
    return states


def _skip_stars(pattern: str, states: set[int]) -> set[int]:
    out = set(states)
    for i in states:
        while i < len(pattern) and pattern[i] == "*":
            i += 1
            out.add(i)
    return out


def _intersects_prefix(pattern: str, prefix: str) -> bool:
    """Some string starting with `prefix` matches `pattern` (case-insensitive)."""
    return bool(_glob_states(pattern.lower(), prefix))


def _covers_prefix(pattern: str, prefix: str) -> bool:
    """Every string starting with `prefix` matches `pattern` (case-insensitive)."""
    p = pattern.lower()
    return any(set(p[i:]) <= {"*"} for i in _glob_states(p, prefix))


# ---------------------------------------------------------------------------------------------- three-valued logic

def _all3(*values: _Tri) -> _Tri:
    if False in values:
        return False
    return None if None in values else True


def _any3(values: Iterable[_Tri]) -> _Tri:
    seen = list(values)
    if True in seen:
        return True
    return None if None in seen else False


def _not3(value: _Tri) -> _Tri:
    return None if value is None else not value


# ---------------------------------------------------------------------------------------------- statement parts

def _invalid_service(service: str) -> bool:
    """A service namespace that names no service: empty, or with a wildcard (IAM allows none there)."""
    return not service or "*" in service or "?" in service


def action_pattern_problem(pattern: str) -> str | None:
    """Why an Action/NotAction entry names no action, or None. It is `*` or `service:name`, with wildcards in
    the name only (IAM "Action" element: a service namespace followed by the action name; IAM Access Analyzer
    "Invalid service in action"): `*:GetBucketPolicy` names nothing."""
    if pattern == "*":
        return None
    service, sep, _ = pattern.partition(":")
    if not sep or _invalid_service(service):
        return f"'{pattern}' has no service namespace or a wildcard in it"
    return None


def _action_pattern(pattern: str, action: str) -> bool:
    return action_pattern_problem(pattern) is None and matches(pattern, action, ignore_case=True)


def _action_match(stmt: Mapping[str, Any], action: str) -> _Tri:
    if "Action" in stmt:
        return any(_action_pattern(p, action) for p in stmt["Action"])
    if "NotAction" in stmt:
        return not any(_action_pattern(p, action) for p in stmt["NotAction"])
    return None


def arn_pattern_problem(pattern: str) -> str | None:
    """Why a Resource/NotResource entry is not an ARN pattern IAM accepts, or None.

    `*` alone is every resource. Otherwise it must have the six colon-separated fields
    `arn:partition:service:region:account:resource` (IAM Access Analyzer "Missing ARN field") and no
    wildcard in the service field (IAM "Resource" element: "You can't use a wildcard in the service
    segment"). Wildcards are allowed in every other field, the resource type included (`u*`).
    """
    if pattern == "*":
        return None
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        return f"'{pattern}' has fewer than the six colon-separated fields of an ARN"
    if _invalid_service(parts[2]):
        return f"'{pattern}' has no service or a wildcard in its service field"
    return None


def _resource_match(stmt: Mapping[str, Any], resource: str | None) -> _Tri:
    if resource is None:
        return True
    target = resource

    def one(pattern: str) -> _Tri:
        if arn_pattern_problem(pattern):
            return False  # only an Allow's Resource gets here (parse refuses the rest): it grants nothing
        return None if "${" in pattern else matches(pattern, target)

    if "Resource" in stmt:
        return _any3(one(p) for p in stmt["Resource"])
    if "NotResource" in stmt:
        return _not3(_any3(one(p) for p in stmt["NotResource"]))
    return True  # trust policies and some key policies name no resource: the policy's own resource


def _principal_match(stmt: Mapping[str, Any], principal: Mapping[str, str] | None) -> _Tri:
    if principal is None:
        return True
    if "Principal" in stmt:
        return _principals_cover(stmt["Principal"], principal, delegate=True)
    if "NotPrincipal" in stmt:
        return not _principals_cover(stmt["NotPrincipal"], principal, delegate=False)
    return None


def _principals_cover(spec: Mapping[str, list[str]], principal: Mapping[str, str], *, delegate: bool) -> bool:
    """`spec` names `principal`; "*" and {"AWS": "*"} name everyone, services included."""
    for ptype, pvalue in principal.items():
        for stype, svalues in spec.items():
            for svalue in svalues:
                if svalue == "*" and stype.lower() in ("aws", ptype.lower()):
                    return True
                if stype.lower() == ptype.lower() and _same_principal(ptype, svalue, pvalue, delegate=delegate):
                    return True
    return False


def _same_principal(ptype: str, granted: str, requested: str, *, delegate: bool) -> bool:
    if ptype.lower() == "service":
        return granted.lower() == requested.lower()
    if ptype.lower() != "aws":
        return granted == requested
    granted, requested = _account_arn(granted), _account_arn(requested)
    if granted == requested:
        return True
    root = _ROOT_ARN.match(granted)  # a resource policy naming an account delegates to all its principals
    parts = requested.split(":")
    return bool(delegate and root and len(parts) > 4 and parts[4] == root.group(1))


def _account_arn(value: str) -> str:
    return f"arn:aws:iam::{value}:root" if ACCOUNT_ID_RE.fullmatch(value) else value


# ---------------------------------------------------------------------------------------------- conditions

def _literal(value: str) -> str:
    if "${" in value:
        raise ValueError("policy variable")
    return value


def _date(value: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bool(value: str) -> str:
    if value.lower() not in ("true", "false"):
        raise ValueError("not a boolean")
    return value.lower()


def _arn_like(pattern: str, value: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-separated components is matched separately."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(matches(a, b) for a, b in zip(p, v, strict=True))


@dataclass(frozen=True)
class _Op:
    policy: Callable[[str], Any]  # converts a policy value; raises ValueError when it does not fit
    context: Callable[[str], Any]  # converts a request value
    test: Callable[[Any, Any], bool]  # (policy value, request value)
    negated: bool = False


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _ops() -> dict[str, _Op]:
    string, fold = _Op(_literal, str, _eq), _Op(lambda s: _literal(s).casefold(), str.casefold, _eq)
    like, arn = _Op(_literal, str, matches), _Op(_literal, str, _arn_like)
    ip = _Op(lambda s: ipaddress.ip_network(s, strict=False), ipaddress.ip_address, lambda net, addr: addr in net)
    ops = {"bool": _Op(_bool, _bool, _eq), "binaryequals": _Op(str, str, _eq)}
    for positive, negative, op in (
            ("stringequals", "stringnotequals", string), ("stringlike", "stringnotlike", like),
            ("stringequalsignorecase", "stringnotequalsignorecase", fold),
            ("arnequals", "arnnotequals", arn), ("arnlike", "arnnotlike", arn),  # ArnEquals == ArnLike in IAM
            ("ipaddress", "notipaddress", ip)):
        ops[positive] = op
        ops[negative] = _Op(op.policy, op.context, op.test, negated=True)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "equals": _eq, "lessthan": lambda p, c: bool(c < p), "lessthanequals": lambda p, c: bool(c <= p),
        "greaterthan": lambda p, c: bool(c > p), "greaterthanequals": lambda p, c: bool(c >= p)}
    converters: dict[str, Callable[[str], Any]] = {"numeric": float, "date": _date}
    for kind, conv in converters.items():
        for name, test in comparisons.items():
            ops[kind + name] = _Op(conv, conv, test)
        ops[kind + "notequals"] = _Op(conv, conv, _eq, negated=True)
    return ops


_OPS = _ops()


def _condition(operator: str, key: str, values: list[str], ctx: _Context) -> _Tri:
    """One operator/key pair against the request context, with IAM's missing-key and set semantics."""
    qualifier, _, name = operator.rpartition(":")
    qualifier, name = qualifier.lower(), name.lower()
    if_exists = name.endswith("ifexists")
    name = name.removesuffix("ifexists")
    if qualifier not in ("", "foranyvalue", "forallvalues"):
        return None
    requested = ctx.get(key.lower(), [])
    if name == "null":
        if qualifier or if_exists or any(v.lower() not in ("true", "false") for v in values):
            return None
        return any((v.lower() == "true") == (not requested) for v in values)
    op = _OPS.get(name)
    if op is None:
        return None
    if not qualifier and key.lower() in _MULTIVALUED_KEYS:
        return None  # the IAM guide requires ForAnyValue/ForAllValues for these keys
    if not requested:
        if if_exists or qualifier == "forallvalues":
            return True
        return False if qualifier == "foranyvalue" else op.negated
    try:
        wanted = [op.policy(v) for v in values]
        given = [op.context(v) for v in requested]
    except (ValueError, OverflowError, OSError):
        return None

    def satisfied(item: Any) -> bool:
        return any(op.test(w, item) for w in wanted) != op.negated

    if qualifier == "forallvalues":
        return all(satisfied(g) for g in given)
    if qualifier == "foranyvalue":
        return any(satisfied(g) for g in given)
    return any(op.test(w, g) for w in wanted for g in given) != op.negated


def _conditions_match(stmt: Mapping[str, Any], ctx: _Context) -> _Tri:
    return _all3(*(_condition(op, key, values, ctx)
                   for op, block in stmt["Condition"].items() for key, values in block.items()))


def _context(context: Mapping[str, str | Sequence[str]]) -> _Context:
    out: _Context = {}
    for key, value in context.items():
        items = [value] if isinstance(value, str | bool | int | float) else list(value)
        out[key.lower()] = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]
    return out


# ---------------------------------------------------------------------------------------------- public API

def decide(policies: Iterable[Policy], request: Request) -> Decision:
    """Evaluate `request` against all statements of `policies` together: explicit Deny > Allow > implicit deny.

    `policies` is an iterable of policy documents (a single str or dict is accepted as one policy). With
    `request.principal` None the policies are identity-based and Principal elements are not evaluated.
    Raises PolicyError when a document cannot be parsed.
    """
    if policies is None or isinstance(policies, str | Mapping):
        policies = [policies]
    statements = [s for p in policies for s in parse(p)]
    ctx = _context(request.context)
    allowed = False
    for stmt in statements:
        hit = _all3(_action_match(stmt, request.action), _resource_match(stmt, request.resource),
                    _principal_match(stmt, request.principal), _conditions_match(stmt, ctx))
        deny = stmt["Effect"] == "Deny"
        if hit is None:
            hit = deny  # undecidable: a Deny applies, an Allow does not
        if hit and deny:
            return "explicit_deny"
        allowed = allowed or hit
    return "allow" if allowed else "implicit_deny"


def allows(policies: Iterable[Policy], request: Request) -> bool:
    """True when decide() gives "allow"."""
    return decide(policies, request) == "allow"


def _grants_service(stmt: Mapping[str, Any], service: str, action: str) -> _Tri:
    return _all3(_principal_match(stmt, {"Service": service}), _action_match(stmt, action))


def trusts_service(trust_policy: Policy, service: str, action: str = "sts:AssumeRole") -> bool:
    """Some Allow lets Principal Service `service` perform `action` (its conditions assumed satisfiable),
    and no unconditional Deny (or undecidable one) takes that away. Resource elements are ignored."""
    statements = parse(trust_policy)
    denied = any(s["Effect"] == "Deny" and not s["Condition"] and _grants_service(s, service, action) is not False
                 for s in statements)
    return not denied and any(s["Effect"] == "Allow" and _grants_service(s, service, action) is True
                              for s in statements)


def _is_wildcard_only(value: str) -> bool:
    return set(value) <= {"*", "?"}


def _guards(operator: str, key: str, values: list[str], *, negated: bool) -> bool:
    """A confused-deputy guard: a SourceAccount/SourceArn/SourceOrg* key compared with a real value,
    positively for an Allow, negatively for a Deny."""
    qualifier, _, name = operator.lower().rpartition(":")
    base = name.removesuffix("ifexists")
    positive = {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"}
    op = _OPS.get(base)
    if key.lower() not in _GUARD_KEYS or op is None or any(map(_is_wildcard_only, values)):
        return False
    if negated:  # Deny unless the key has the right value; IfExists is fine (a missing key is denied too)
        return not qualifier and op.negated and base.replace("not", "") in positive
    return qualifier in ("", "foranyvalue") and base in positive and base == name


def confused_deputy_guarded(policy: Policy, service: str, action: str = "sts:AssumeRole") -> bool:
    """Every Allow granting `service` `action` carries an aws:SourceAccount/aws:SourceArn (or
    aws:SourceOrgID/aws:SourceOrgPaths) condition; a Deny for the service whose only conditions are negated
    guards (e.g. StringNotEquals aws:SourceAccount) guards them all. True when nothing grants the service."""
    statements = parse(policy)
    for s in statements:
        if s["Effect"] == "Deny" and s["Condition"] and _grants_service(s, service, action) is True and all(
                _guards(op, k, v, negated=True) for op, block in s["Condition"].items() for k, v in block.items()):
            return True
    return all(any(_guards(op, k, v, negated=False) for op, block in s["Condition"].items() for k, v in block.items())
               for s in statements if s["Effect"] == "Allow" and _grants_service(s, service, action) is True)


def _fixed(value: str) -> bool:
    """A fixed value in S3's sense: no wildcard and no policy variable."""
    return not any(c in value for c in ("*", "?", "${"))


def _restricts(operator: str, key: str, values: list[str]) -> bool:
    """A condition that pins a public grant to fixed callers, in the sense S3 uses for "public".

    Only a positive operator (StringEquals, StringLike, ArnEquals, ArnLike, IpAddress, optionally
    ForAnyValue:) on a listed key with fixed values pins; a negated or IfExists operator does not.
    """
    qualifier, _, name = operator.lower().rpartition(":")
    op = _OPS.get(name)
    if op is None or op.negated or qualifier not in ("", "foranyvalue") or not values:
        return False
    key = key.lower()
    if key == "aws:sourceip":
        if name != "ipaddress":
            return False
        try:
            nets = [ipaddress.ip_network(v, strict=False) for v in values]
        except ValueError:
            return False
        return all(n.prefixlen >= (8 if n.version == 4 else 32) or n.is_private for n in nets)
    if key not in _RESTRICTING_KEYS or not name.startswith(("string", "arn")):
        return False
    if key == "aws:userid":  # a role's sessions, AROLEID:*, are a fixed principal
        values = [v.removesuffix(":*") for v in values]
    if key == "s3:dataaccesspointarn":  # any access point of a fixed account
        values = [re.sub(r"(:\d{12}:accesspoint/)\*$", r"\1x", v) for v in values]
    return all(_fixed(v) for v in values)


def _public_principal(stmt: Mapping[str, Any]) -> bool:
    """Everyone, a federated (web identity) principal, or a principal with a wildcard; NotPrincipal too."""
    if "NotPrincipal" in stmt:
        return True
    return any(ptype.lower() == "federated" or not all(_fixed(v) for v in values)
               for ptype, values in stmt.get("Principal", {}).items())


def _grants_any(stmt: Mapping[str, Any], names: Iterable[str]) -> bool:
    """The statement's Action/NotAction covers at least one of the concrete action `names`."""
    return any(_action_match(stmt, n) is True for n in names)


@dataclass(frozen=True)
class PublicGrant:
    """An Allow statement that makes a bucket policy public in S3's sense."""

    statement: str  # its Sid, or "Statement[i]"
    writes: bool  # it lets the public change or delete objects or the bucket's protection
    reads: bool  # it lets the public read or list


def public_grants(policy: Policy) -> list[PublicGrant]:
    """The Allow statements that make a bucket policy public, as S3 defines it ("The meaning of 'public'").

    A statement is public when it grants any action (reads, writes, anything) to "*", {"AWS": "*"}, a
    federated principal, a principal containing a wildcard, or through NotPrincipal, and no condition
    pins it to fixed callers: a positive operator with fixed values (no `*`, `?`, `${...}`) on
    aws:PrincipalOrgID/Account/Arn/OrgPaths/ServiceName, aws:Source{Arn,Vpc,Vpce,Owner,Account},
    aws:userid, the SSE-KMS key id, the access point keys, or aws:SourceIp no broader than /8 (IPv4) or
    /32 (IPv6) unless private.
    """
    found = []
    for i, stmt in enumerate(parse(policy)):
        if stmt["Effect"] != "Allow" or not _public_principal(stmt):
            continue
        if "Action" in stmt:
            grants = bool(stmt["Action"])
        else:
            grants = not any(_covers_prefix(p, "s3:") for p in stmt.get("NotAction", ["*"]))
        restricted = any(_restricts(op, k, v) for op, block in stmt["Condition"].items() for k, v in block.items())
        if not grants or restricted:
            continue
        if "Action" in stmt:
            reads = any(_intersects_prefix(p, pre) for p in stmt["Action"] for pre in _READ_PREFIXES)
        else:
            reads = any(not any(_covers_prefix(p, pre) for p in stmt["NotAction"]) for pre in _READ_PREFIXES)
        found.append(PublicGrant(stmt.get("Sid") or f"Statement[{i}]", _grants_any(stmt, WRITE_ACTIONS), reads))
    return found


def unconditioned_public_grants(policy: Policy) -> list[str]:
    """The Sid (or "Statement[i]") of each statement public_grants() finds, in order."""
    return [g.statement for g in public_grants(policy)]


def blocks(policies: Iterable[Policy], request: Request) -> bool | None:
    """Whether one SCP level certainly blocks `request`, for a protection question (the strict reading).

    True when a Deny certainly matches, or when no Allow could match (an SCP level without an Allow denies
    implicitly). False when an Allow certainly matches and no Deny could. None when it cannot be decided: an
    undecidable Deny (or Allow) never counts as protection, unlike `decide`, which is conservative for access.
    """
    if policies is None or isinstance(policies, str | Mapping):
        policies = [policies]
    statements = [s for p in policies for s in parse(p)]
    ctx = _context(request.context)
    deny_hits: list[_Tri] = []
    allow_hits: list[_Tri] = []
    for stmt in statements:
        hit = _all3(_action_match(stmt, request.action), _resource_match(stmt, request.resource),
                    _principal_match(stmt, request.principal), _conditions_match(stmt, ctx))
        (deny_hits if stmt["Effect"] == "Deny" else allow_hits).append(hit)
    if True in deny_hits:
        return True
    allowed = _any3(allow_hits)
    if allowed is False:
        return True
    if None in deny_hits or allowed is None:
        return None
    return False
