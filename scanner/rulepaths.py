"""Check the fact paths a rule's JMESPath expressions read against the facts vocabulary.

The compiled AST is walked with, in place of data, the set of schemas the current value may have. A field
that no alternative defines is an unknown path. Where the current value cannot be determined (a function's
result, a literal, a multiselect, an opaque value such as a policy document) nothing below it is checked:
the checker never guesses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audit_bedrock.vocabulary import Schema, branches, is_gap_schema, root_schema
from audit_bedrock.yamlcheck import did_you_mean

# None: the value's schema is unknown (nothing below it is checked).
Shape = list[Schema] | None
# Functions whose expression argument (&expr) reads the elements of another argument: its index.
_EXPREF_ELEMENTS = {"sort_by": 0, "min_by": 0, "max_by": 0, "map": 1}
# JMESPath has no null keyword: rules write `x == null`, reading a field no fact has, which is null.
NULL_IDIOM = "null"
# Functions whose result has the schema of an argument: its index.
_SAME_AS_ARG = {"sort_by": 0, "reverse": 0}


@dataclass(frozen=True)
class Unknown:
    """An unknown path, with the closest known one (or '')."""

    path: str
    hint: str = ""


def _opaque(node: Schema) -> bool:
    """A value whose inside the vocabulary does not describe (any field may be read from it)."""
    if "properties" in node or "items" in node or isinstance(node.get("additionalProperties"), dict):
        return False
    t = node.get("type")
    kinds = t if isinstance(t, list) else [t]
    return t is None and "enum" not in node and "const" not in node or "object" in kinds or "array" in kinds


def _flat(nodes: list[Schema]) -> list[Schema]:
    return [b for n in nodes for b in branches(n)]


def elements(shape: Shape) -> Shape:
    """The schemas of a list's elements (non-lists project to nothing)."""
    if shape is None:
        return None
    out: list[Schema] = []
    for node in shape:
        if isinstance(node.get("items"), dict):
            out.extend(branches(node["items"]))
        elif _opaque(node):
            return None
    return out


def _list_of(shape: Shape) -> Shape:
    return None if shape is None else [{"type": "array", "items": {"anyOf": shape}}]


class PathChecker:
    """Collects the unknown paths of expressions evaluated in one rule's context."""

    def __init__(self, roots: dict[str, Schema]) -> None:
        self.root: Schema = {"type": "object", "properties": roots, "additionalProperties": False}
        self.unknown: list[Unknown] = []

    def check(self, parsed: Mapping[str, Any]) -> Shape:
        """Walk one compiled expression from the rule's context; return the schemas of its result."""
        shape, _ = self._eval(parsed, [self.root], "")
        return shape

    def _field(self, name: str, shape: Shape, path: str) -> tuple[Shape, str]:
        full = f"{path}.{name}" if path else name
        if shape is None:
            return None, full
        found: list[Schema] = []
        known: list[str] = []
        for node in shape:
            props = node.get("properties") or {}
            known.extend(k for k in props if not is_gap_schema(node))
            if name in props:
                found.append(props[name])
            elif isinstance(node.get("additionalProperties"), dict):
                found.append(node["additionalProperties"])
            elif _opaque(node):
                return None, full
        if found:
            return _flat(found), full
        choices = sorted({f"{path}.{k}" if path else k for k in known})
        self.unknown.append(Unknown(full, did_you_mean(full, choices)))
        return None, full

    def _eval(self, node: Mapping[str, Any], shape: Shape, path: str) -> tuple[Shape, str]:
        kind = node.get("type")
        kids: list[Any] = node.get("children") or []
        if kind == "field":
            if node["value"] == NULL_IDIOM:
                return None, ""
            return self._field(str(node["value"]), shape, path)
        if kind in ("subexpression", "pipe"):  # a.b.c may be one subexpression of three fields
            for kid in kids:
                shape, path = self._eval(kid, shape, path)
            return shape, path
        if kind == "index_expression":
            left, lpath = self._eval(kids[0], shape, path)
            if kids[1].get("type") == "index":
                return elements(left), f"{lpath}[]"
            return left, lpath  # a slice keeps the list
        if kind in ("projection", "filter_projection"):
            left, lpath = self._eval(kids[0], shape, path)
            items = elements(left)
            if kind == "filter_projection":
                self._eval(kids[2], items, f"{lpath}[]")
            right, rpath = self._eval(kids[1], items, f"{lpath}[]")
            return _list_of(right), rpath
        if kind == "flatten":
            left, lpath = self._eval(kids[0], shape, path)
            items = elements(left)
            if items is None:
                return None, lpath
            flat: list[Schema] = []
            for e in items:
                flat.extend(branches(e["items"]) if isinstance(e.get("items"), dict) else [e])
            return [{"type": "array", "items": {"anyOf": flat}}], lpath
        if kind == "value_projection":
            left, lpath = self._eval(kids[0], shape, path)
            values: Shape = []
            for n in left or []:
                if _opaque(n):
                    values = None
                    break
                assert values is not None
                values.extend((n.get("properties") or {}).values())
                if isinstance(n.get("additionalProperties"), dict):
                    values.append(n["additionalProperties"])
            values = None if left is None or values is None else _flat(values)
            right, rpath = self._eval(kids[1], values, f"{lpath}.*")
            return _list_of(right), rpath
        if kind in ("identity", "current"):
            return shape, path
        if kind in ("or_expression", "and_expression"):
            a, apath = self._eval(kids[0], shape, path)
            b, bpath = self._eval(kids[1], shape, path)
            both = None if a is None or b is None else a + b
            return both, apath if apath == bpath else ""
        if kind == "function_expression":
            return self._function(str(node["value"]), kids, shape, path), ""
        if kind == "multi_select_dict":
            for pair in kids:
                self._eval(pair["children"][0], shape, path)
            return None, ""
        if kind in ("not_expression", "comparator", "multi_select_list"):
            for kid in kids:
                self._eval(kid, shape, path)
            return None, ""
        return None, ""  # literal, raw string, a lone expref, or a construct not described here

    def _function(self, name: str, args: list[Any], shape: Shape, path: str) -> Shape:
        results: list[tuple[Shape, str]] = [
            (None, "") if arg.get("type") == "expref" else self._eval(arg, shape, path) for arg in args]
        for arg in args:
            if arg.get("type") == "expref" and _EXPREF_ELEMENTS.get(name, len(args)) < len(args):
                source, spath = results[_EXPREF_ELEMENTS[name]]
                self._eval(arg["children"][0], elements(source), f"{spath}[]")
        if _SAME_AS_ARG.get(name, len(args)) < len(args):
            return results[_SAME_AS_ARG[name]][0]
        return None


def rule_roots(scope: str, item: Shape, has_item: bool) -> dict[str, Schema]:
    """The context a rule's expressions see: region rules read `fact`; `item` exists with for_each."""
    roots = {"account": root_schema("account"), "params": root_schema("params")}
    if scope == "region":
        roots = {"fact": root_schema("fact"), **roots}
    if has_item:
        roots["item"] = {"anyOf": item} if item else {}
    return roots


def unknown_fact(scope: str, for_each: Mapping[str, Any] | None,
                 exprs: list[tuple[str, Mapping[str, Any]]]) -> tuple[str, str] | None:
    """(key, problem) for the first expression of a rule that reads an unknown path, else None.

    `exprs` are (rule key, compiled AST) pairs; `for_each`'s elements are what `item` reads.
    """
    item: Shape = None
    checked: list[tuple[str, Mapping[str, Any], PathChecker]] = []
    if for_each is not None:
        chk = PathChecker(rule_roots(scope, None, has_item=False))
        item = elements(chk.check(for_each))
        checked.append(("for_each", for_each, chk))
    for key, parsed in exprs:
        chk = PathChecker(rule_roots(scope, item, has_item=for_each is not None))
        chk.check(parsed)
        checked.append((key, parsed, chk))
    for key, _, chk in checked:
        if chk.unknown:
            u = chk.unknown[0]
            hint = u.hint
            if u.path.split(".")[0].split("[")[0] == "item" and for_each is None:
                hint += " ('item' is defined only in a rule with for_each)"
            elif u.path.split(".")[0] == "fact" and scope == "account":
                hint += " (an account-scope rule reads 'account', not 'fact')"
            return key, f"unknown fact '{u.path}'{hint}; audit-bedrock --list-facts lists the known ones"
    if for_each is not None and item == []:
        return "for_each", "does not select a list of facts"
    return None
