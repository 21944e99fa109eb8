"""The rule engine: load and validate YAML rules, evaluate JMESPath conditions over facts, emit raw results."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.visitor
from jmespath.parser import ParsedResult

from audit_bedrock.constants import RULE_ID_RE, SEVERITIES
from audit_bedrock.errors import UsageError
from audit_bedrock.facts import is_gap
from audit_bedrock.rulepaths import unknown_fact
from audit_bedrock.yamlcheck import Checker, read_yaml

GAP_RULE_ID = "SCAN-003"
SCOPES = ("region", "account")
CATEGORIES = ("posture", "coverage")
RULE_KEYS = (
    "id", "title", "severity", "severity_when", "scope", "category", "requires", "for_each",
    "condition", "resource", "message", "vars", "properties", "rationale", "remediation",
    "references", "examples",
)
REQUIRED_KEYS = ("id", "title", "severity", "scope", "condition", "resource", "message",
                 "remediation", "references", "examples")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class RuleFunctions(jmespath.functions.Functions):
    """The small registry of custom JMESPath functions rules may call."""

    @jmespath.functions.signature({"types": []})
    def _func_is_gap(self, value: Any) -> bool:
        return is_gap(value)

    @jmespath.functions.signature({"types": ["array"]}, {"types": ["object", "null"]})
    def _func_missing(self, keys: list[Any], obj: dict[str, Any] | None) -> list[Any]:
        """The keys whose value in `obj` is not true."""
        obj = obj or {}
        return [k for k in keys if obj.get(k) is not True]

    @jmespath.functions.signature({"types": ["string", "null"]}, {"types": ["array", "null"]})
    def _func_in_list(self, value: str | None, items: list[Any] | None) -> bool:
        return value is not None and value in (items or [])

    @jmespath.functions.signature({"types": ["string", "null"]}, {"types": ["array", "null"]})
    def _func_glob_any(self, value: str | None, patterns: list[Any] | None) -> bool:
        """True when `value` matches one of the shell-style patterns (`*`, `?`, `[...]`), case-sensitively."""
        return value is not None and any(fnmatch.fnmatchcase(value, str(p)) for p in patterns or [])

    @jmespath.functions.signature({"types": ["array", "null"]}, {"types": ["string"]})
    def _func_join_or(self, items: list[Any] | None, default: str) -> str:
        """Join strings with ', ' or return `default` for an empty list."""
        return ", ".join(str(i) for i in items) if items else default


_OPTIONS = jmespath.Options(custom_functions=RuleFunctions())
# JMESPath steps (AST nodes visited) one rule may take for one account or region, its for_each items included.
# The shipped rules take a few hundred on their examples (a few thousand on a large account); `[@,@][]` chained
# doubles the work per link, so a rule pack could otherwise stall the scan for hours. Counted, not timed: the same
# facts give the same verdict on every machine (250,000 steps take about 0.3 s).
RULE_STEP_LIMIT = 250_000


class EvaluationLimitError(Exception):
    """A rule took more than its step budget for one account or region."""


class StepBudget:
    """The steps left to one rule's evaluation for one account or region, shared by all its expressions."""

    def __init__(self, rule_id: str, limit: int = RULE_STEP_LIMIT) -> None:
        self.rule_id = rule_id
        self.limit = limit
        self.left = limit
        self._interpreter: _BoundedInterpreter | None = None

    def interpreter(self) -> _BoundedInterpreter:
        """The interpreter that counts against this budget (one per budget: made on first use)."""
        if self._interpreter is None:
            self._interpreter = _BoundedInterpreter(self)
        return self._interpreter


class _BoundedInterpreter(jmespath.visitor.TreeInterpreter):
    """jmespath's interpreter, counting every node it visits against a StepBudget.

    `visit` does what jmespath's Visitor.visit does (dispatch on the node's type) plus the count, in one call: it
    runs for every node of every rule on every account and region. The methods are looked up once per node type
    for the whole process (the class's functions, not one instance's bound methods)."""

    _methods: ClassVar[dict[str, Callable[..., Any]]] = {}

    def __init__(self, budget: StepBudget) -> None:
        super().__init__(_OPTIONS)
        self._budget = budget

    def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        budget = self._budget
        budget.left -= 1
        if budget.left < 0:
            raise EvaluationLimitError(f"rule {budget.rule_id} exceeded the evaluation bound of {budget.limit:,} "
                                       "JMESPath steps for one account or region (a rule expression that grows "
                                       "exponentially, such as [@,@][] chained?)")
        kind = node["type"]
        method = self._methods.get(kind)
        if method is None:
            method = self._methods[kind] = getattr(type(self), f"visit_{kind}", type(self).default_visit)
        return method(self, node, *args, **kwargs)


def search(expr: ParsedResult, data: Any, budget: StepBudget | None = None) -> Any:
    """Evaluate a compiled expression with the custom functions; with a budget, within its steps."""
    if budget is None:
        return expr.search(data, options=_OPTIONS)
    return budget.interpreter().visit(expr.parsed, data)


@dataclass(frozen=True)
class Rule:
    """One validated rule with its compiled expressions."""

    id: str
    title: str
    severity: str
    scope: str
    category: str
    condition: ParsedResult
    resource: ParsedResult
    message: str
    remediation: str
    references: tuple[str, ...]
    rationale: str
    source: str
    for_each: ParsedResult | None = None
    requires: tuple[tuple[str, ParsedResult], ...] = ()
    severity_when: tuple[tuple[ParsedResult, str], ...] = ()
    vars: tuple[tuple[str, ParsedResult], ...] = ()
    properties: tuple[tuple[str, ParsedResult], ...] = ()
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_catalog(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity, "scope": self.scope,
                "category": self.category, "rationale": self.rationale, "remediation": self.remediation,
                "references": list(self.references)}


@dataclass(frozen=True)
class RawResult:
    """A rule that fired, before ids, overrides and suppressions are applied."""

    rule: Rule
    severity: str
    account_id: str
    region: str | None
    resource: str
    message: str
    properties: dict[str, Any]
    discriminator: str = ""


class _RuleChecker(Checker):
    """The shared YAML checks, with each problem naming the rule, plus JMESPath compilation."""

    def __init__(self, source: str, text: str) -> None:
        super().__init__(source, text, context="rule ?: ")

    def named(self, rule_id: str) -> None:
        self.context = f"rule {rule_id}: "

    def compile(self, key: str, expr: Any) -> ParsedResult:
        if not isinstance(expr, str) or not expr.strip():
            raise self.fail(key, "expected a JMESPath expression string")
        try:
            return jmespath.compile(expr)
        except jmespath.exceptions.JMESPathError as exc:
            problem = str(exc).replace("\n", " ")
            raise self.fail(key, f"invalid JMESPath '{expr}': {problem}") from None

    def expr_map(self, data: dict[str, Any], key: str) -> tuple[tuple[str, ParsedResult], ...]:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise self.fail(key, "expected a mapping of name to JMESPath expression")
        return tuple((str(k), self.compile(f"{key}.{k}", v)) for k, v in value.items())


def parse_rule(data: Any, source: str, text: str = "") -> Rule:
    """Validate one rule document; every problem names the file, the rule and the key."""
    chk = _RuleChecker(source, text)
    if not isinstance(data, dict):
        raise UsageError("a rule file must hold one mapping (a rule)", source=source)
    if isinstance(data.get("id"), str):
        chk.named(data["id"])
    chk.unknown(data, RULE_KEYS)
    for key in REQUIRED_KEYS:
        if key not in data:
            raise chk.fail(key, "missing required key")
    rule_id = chk.text(data, "id")
    chk.pattern("id", rule_id, RULE_ID_RE, "a rule id like BIL-005")
    severity = chk.choice("severity", chk.text(data, "severity"), SEVERITIES, show=False)
    scope = chk.choice("scope", chk.text(data, "scope"), SCOPES, show=False)
    category = chk.choice("category", data.get("category", "posture"), CATEGORIES, show=False)
    refs = data.get("references")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r for r in refs):
        raise chk.fail("references", "expected a non-empty list of URLs")
    requires_raw = data.get("requires") or []
    if not isinstance(requires_raw, list):
        raise chk.fail("requires", "expected a list of JMESPath paths")
    requires = tuple((str(p), chk.compile(f"requires[{i}]", p)) for i, p in enumerate(requires_raw))
    sev_when_raw = data.get("severity_when") or []
    if not isinstance(sev_when_raw, list):
        raise chk.fail("severity_when", "expected a list of {if, severity}")
    sev_when = []
    for i, item in enumerate(sev_when_raw):
        if not isinstance(item, dict) or set(item) != {"if", "severity"}:
            raise chk.fail(f"severity_when[{i}]", "expected exactly the keys 'if' and 'severity'")
        chk.choice(f"severity_when[{i}].severity", item["severity"], SEVERITIES, show=False)
        sev_when.append((chk.compile(f"severity_when[{i}].if", item["if"]), str(item["severity"])))
    message = chk.text(data, "message")
    variables = chk.expr_map(data, "vars")
    known_vars = {n for n, _ in variables} | {"account_id", "account_name", "region", "resource", "blocked_rule",
                                              "permission", "error_code", "reason"}
    for name in _PLACEHOLDER.findall(message):
        if name not in known_vars:
            raise chk.fail("message", f"placeholder '{{{name}}}' has no entry in 'vars'")
    examples = data.get("examples")
    if not isinstance(examples, dict) or set(examples) - {"fire", "pass"}:
        raise chk.fail("examples", "expected a mapping with 'fire' and 'pass' lists")
    for kind in ("fire", "pass"):
        items = examples.get(kind)
        if not isinstance(items, list) or not items:
            raise chk.fail(f"examples.{kind}", "expected a non-empty list of examples")
        for i, ex in enumerate(items):
            if not isinstance(ex, dict) or "name" not in ex or "facts" not in ex:
                raise chk.fail(f"examples.{kind}[{i}]", "each example needs 'name' and 'facts'")
            extra = set(ex) - {"name", "facts", "params", "count", "severity"}
            if extra:
                raise chk.fail(f"examples.{kind}[{i}]", f"unknown key(s) {sorted(extra)}")
    rule = Rule(
        id=rule_id, title=chk.text(data, "title"), severity=severity, scope=scope, category=category,
        condition=chk.compile("condition", data["condition"]),
        resource=chk.compile("resource", data["resource"]),
        message=message, remediation=chk.text(data, "remediation"),
        references=tuple(refs), rationale=chk.text(data, "rationale", required=False),
        source=source,
        for_each=chk.compile("for_each", data["for_each"]) if "for_each" in data else None,
        requires=requires, severity_when=tuple(sev_when), vars=variables,
        properties=chk.expr_map(data, "properties"), examples=examples,
    )
    exprs = [("condition", rule.condition), ("resource", rule.resource),
             *((f"requires[{i}]", e) for i, (_, e) in enumerate(rule.requires)),
             *((f"severity_when[{i}].if", e) for i, (e, _) in enumerate(rule.severity_when)),
             *((f"vars.{n}", e) for n, e in rule.vars), *((f"properties.{n}", e) for n, e in rule.properties)]
    problem = unknown_fact(rule.scope, rule.for_each.parsed if rule.for_each else None,
                           [(k, e.parsed) for k, e in exprs])
    if problem:
        raise chk.fail(*problem)
    return rule


def default_rules_dir() -> Path:
    """The rule pack shipped inside the package."""
    return Path(str(resources.files("audit_bedrock.rules")))


def load_rules(extra_dirs: tuple[str, ...] | list[str] = (), include_default: bool = True) -> list[Rule]:
    """Load the default pack plus `extra_dirs`; duplicate ids and bad files raise UsageError."""
    dirs: list[Path] = [default_rules_dir()] if include_default else []
    for extra in extra_dirs:
        p = Path(extra)
        if not p.is_dir():
            raise UsageError("rules directory not found or not a directory", source=extra)
        dirs.append(p)
    rules: dict[str, Rule] = {}
    for d in dirs:
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            data, text = read_yaml(path, "rule")
            rule = parse_rule(data, str(path), text)
            if rule.id in rules:
                raise UsageError(f"rule {rule.id}: duplicate rule id (also defined in {rules[rule.id].source})",
                                 source=str(path))
            rules[rule.id] = rule
    if include_default and GAP_RULE_ID not in rules:
        raise UsageError(f"the rule pack must define {GAP_RULE_ID}", source=str(dirs[0]))
    return sorted(rules.values(), key=lambda r: r.id)


def _format(template: str, values: dict[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        v = values.get(m.group(1))
        if isinstance(v, list):
            return ", ".join(str(x) for x in v) if v else "none"
        return "" if v is None else str(v)

    return _PLACEHOLDER.sub(sub, template)


def _reason(g: dict[str, Any]) -> str:
    """A gap's message without its leading error code (collectors record "Code: message"), "" when that is all."""
    message, code = str(g.get("message") or ""), str(g.get("code") or "")
    return message.removeprefix(f"{code}: ") if message != code else ""


class Evaluator:
    """Evaluates a rule set over account and region documents."""

    def __init__(self, rules: list[Rule], params: dict[str, Any]) -> None:
        self.rules = [r for r in rules if r.id != GAP_RULE_ID]
        self.gap_rule = next((r for r in rules if r.id == GAP_RULE_ID), None)
        self.params = params

    def evaluate_account(self, account: dict[str, Any]) -> list[RawResult]:
        """All results for one account document (its `regions` list holds the region documents)."""
        out: list[RawResult] = []
        status = account.get("status")
        regions = [r for r in account.get("regions") or [] if isinstance(r, dict)]
        if status == "skipped" or (status == "interrupted" and not any(r.get("status") == "scanned"
                                                                        for r in regions)):
            return out  # nothing was read: nothing to judge
        acct = {k: v for k, v in account.items() if k != "regions"}
        for rule in self.rules:
            if rule.scope == "account":
                out.extend(self._run_safe(rule, {"account": acct, "params": self.params}, account, None))
        if status not in ("scanned", "interrupted"):  # an interrupted account's regions read so far count
            return out
        for region_doc in regions:
            if region_doc.get("status") == "skipped":
                continue
            ctx = {"fact": region_doc, "account": acct, "params": self.params}
            for rule in self.rules:
                if rule.scope == "region":
                    out.extend(self._run_safe(rule, ctx, account, str(region_doc.get("region"))))
        return out

    def _run_safe(self, rule: Rule, ctx: dict[str, Any], account: dict[str, Any],
                  region: str | None) -> list[RawResult]:
        """`_run`; an evaluation error of any kind (a JMESPath type error, a TypeError from comparing a string
        with a number in a custom function, a fact of an unexpected type) makes the rule SCAN-003 for this
        scope, never a crash: the rest of the scan goes on."""
        try:
            return self._run(rule, ctx, account, region, StepBudget(rule.id))
        except Exception as exc:  # contained per rule and scope, reported as SCAN-003 with the error
            gap_rule = self.gap_rule
            if gap_rule is None:
                raise
            resource = self._resource(rule, ctx, account, region)
            code = type(exc).__name__
            values = self._base_values(account, region, resource)
            values.update({"blocked_rule": rule.id, "permission": "evaluating its facts", "error_code": code,
                           "reason": ": " + str(exc).replace("\n", " ")[:300]})
            props = {"blocked_rule": rule.id, "missing_permissions": [], "error_codes": [code], "facts": [],
                     "evaluation_error": str(exc).replace("\n", " ")[:300]}
            return [RawResult(gap_rule, gap_rule.severity, account["account_id"], region, resource,
                              _format(gap_rule.message, values), props, discriminator=rule.id)]

    def _run(self, rule: Rule, ctx: dict[str, Any], account: dict[str, Any],
             region: str | None, budget: StepBudget) -> list[RawResult]:
        out: list[RawResult] = []
        doc_requires = [(p, e) for p, e in rule.requires if not p.startswith("item")]
        item_requires = [(p, e) for p, e in rule.requires if p.startswith("item")]
        blocked = self._gaps(doc_requires, ctx, budget)
        if blocked:
            return [self._gap_result(rule, ctx, account, region, blocked)]
        items: list[Any]
        if rule.for_each is None:
            items = [None]
        else:
            found = search(rule.for_each, ctx, budget)
            items = found if isinstance(found, list) else []
        for item in items:
            ictx = ctx if rule.for_each is None else {**ctx, "item": item}
            blocked = self._gaps(item_requires, ictx, budget)
            if blocked:
                out.append(self._gap_result(rule, ictx, account, region, blocked))
                continue
            if not search(rule.condition, ictx, budget):
                continue
            severity = rule.severity
            for cond, sev in rule.severity_when:
                if search(cond, ictx, budget):
                    severity = sev
                    break
            resource = self._resource(rule, ictx, account, region, budget)
            values = self._base_values(account, region, resource)
            values.update({name: search(expr, ictx, budget) for name, expr in rule.vars})
            props = {name: search(expr, ictx, budget) for name, expr in rule.properties}
            # a message of placeholders only may format to nothing: findings.json needs a message
            out.append(RawResult(rule, severity, account["account_id"], region, resource,
                                 _format(rule.message, values) or rule.title, props))
        return out

    @staticmethod
    def _gaps(requires: list[tuple[str, ParsedResult]], ctx: dict[str, Any],
              budget: StepBudget) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for path, expr in requires:
            value = search(expr, ctx, budget)
            if is_gap(value):
                found.append((path, value))
        return found

    @staticmethod
    def _base_values(account: dict[str, Any], region: str | None, resource: str) -> dict[str, Any]:
        return {"account_id": account["account_id"], "account_name": account.get("account_name", ""),
                "region": region or "global", "resource": resource}

    @staticmethod
    def _resource(rule: Rule, ctx: dict[str, Any], account: dict[str, Any], region: str | None,
                  budget: StepBudget | None = None) -> str:
        try:  # the resource of a gap or an error finding gets a budget of its own
            value = search(rule.resource, ctx, budget or StepBudget(rule.id))
        except EvaluationLimitError:
            if budget is not None:  # the rule's own budget: the rule is reported, not given a default resource
                raise
            value = None
        except Exception:  # noqa: BLE001 -- the rule's own error is reported by _run_safe; a default resource here
            value = None
        if isinstance(value, str) and value:
            return value
        if region:
            return f"arn:aws:bedrock:{region}:{account['account_id']}:model-invocation-logging"
        return f"arn:aws:iam::{account['account_id']}:root"

    def _gap_result(self, rule: Rule, ctx: dict[str, Any], account: dict[str, Any], region: str | None,
                    blocked: list[tuple[str, dict[str, Any]]]) -> RawResult:
        gap_rule = self.gap_rule
        if gap_rule is None:
            raise RuntimeError(f"{GAP_RULE_ID} is not loaded")
        resource = self._resource(rule, ctx, account, region)
        permissions = sorted({g["action"] for _, g in blocked})
        codes = sorted({str(g.get("code", "")) for _, g in blocked})
        values = self._base_values(account, region, resource)
        reasons = sorted({_reason(g) for _, g in blocked} - {""})
        values.update({"blocked_rule": rule.id, "permission": ", ".join(permissions),
                       "error_code": ", ".join(codes), "reason": f": {'; '.join(reasons)[:600]}" if reasons else ""})
        props = {"blocked_rule": rule.id, "missing_permissions": permissions, "error_codes": codes,
                 "facts": sorted(p for p, _ in blocked), "reasons": reasons}
        return RawResult(gap_rule, gap_rule.severity, account["account_id"], region, resource,
                         _format(gap_rule.message, values), props, discriminator=rule.id)


EXAMPLE_ACCOUNT = "111111111111"


def example_account(rule: Rule, facts: dict[str, Any]) -> dict[str, Any]:
    """Wrap an example's facts into the account document the evaluator takes."""
    if rule.scope == "account":
        return {"account_id": EXAMPLE_ACCOUNT, "account_name": "example", "ou_path": "", "status": "scanned",
                "reason": "", "regions": [], **facts}
    region = {"account_id": EXAMPLE_ACCOUNT, "region": "us-east-1", "status": "scanned", **facts}
    return {"account_id": region["account_id"], "account_name": "example", "ou_path": "", "status": "scanned",
            "reason": "", "regions": [region]}


def check_example(rules: list[Rule], rule: Rule, kind: str, example: dict[str, Any],
                  params: dict[str, Any]) -> str | None:
    """Run one example of `rule` with the whole rule set; return a problem, or None when it behaves."""
    merged = {**params, **(example.get("params") or {})}
    results = [r for r in Evaluator(rules, merged).evaluate_account(example_account(rule, example["facts"]))
               if r.rule.id == rule.id]
    name = f"{rule.id} {kind} example '{example['name']}' ({rule.source})"
    if kind == "pass":
        return f"{name}: fired {len(results)} time(s), expected none" if results else None
    if not results:
        return f"{name}: did not fire"
    if "count" in example and len(results) != example["count"]:
        return f"{name}: fired {len(results)} time(s), expected {example['count']}"
    if "severity" in example and any(r.severity != example["severity"] for r in results):
        return f"{name}: severity {[r.severity for r in results]}, expected {example['severity']}"
    return None
