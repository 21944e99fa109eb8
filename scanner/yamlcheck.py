"""YAML input validation shared by config and rule loading: reading, key lines, typed checks, did-you-mean.

Every problem is a UsageError naming the file, the key (as 'a.b' or 'a[0].b') and its line.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from audit_bedrock.errors import UsageError


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader (libyaml when available: the pure-Python parser costs over a second per run on the
    default rule pack) that keeps an impossible date such as 2024-13-45 as text, so that the key's own
    check reports it with its name and line instead of the parser failing with a bare ValueError."""


def _lenient_timestamp(loader: Any, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _lenient_timestamp)
_YAML_LOADER: Any = _Loader


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """A ' (did you mean X?)' suffix when a close match exists."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def key_lines(text: str) -> dict[str, int]:
    """Map each key path ('a', 'a.b', 'suppressions[0].rule') to its 1-based line."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node | None, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                name = f"{prefix}.{k.value}" if prefix else str(k.value)
                lines[name] = k.start_mark.line + 1
                walk(v, name)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                name = f"{prefix}[{i}]"
                lines[name] = v.start_mark.line + 1
                walk(v, name)

    walk(root, "")
    return lines


def _alias_problem(text: str) -> str:
    """Refuse anchors and aliases, from the parser's events (streamed: nothing is constructed or expanded).

    Config and rule files have no use for them; an alias bomb would expand to gigabytes, a recursive one
    (`a: &x [*x]`) would recurse without end."""
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor:
            mark = event.start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
            return (f"{where}YAML {kind} '{anchor}' refused: "
                    "anchors and aliases are not supported in this file")
    return ""


def read_yaml(path: Path, what: str) -> tuple[Any, str]:
    """Read and parse a YAML file, turning every failure into a UsageError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} file: {exc}", source=str(path)) from None
    try:
        problem = _alias_problem(text)
        if problem:
            raise UsageError(problem, source=str(path))
        return yaml.load(text, Loader=_YAML_LOADER), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{where}invalid YAML: {problem}", source=str(path)) from None


class Checker:
    """Type and value checks of one YAML document that name the file, the key and its line.

    `context` prefixes each problem after the line (e.g. "rule BIL-005: ").
    """

    def __init__(self, source: str, text: str = "", context: str = "") -> None:
        self.source = source
        self.lines = key_lines(text) if text else {}
        self.context = context

    def fail(self, key: str, problem: str) -> UsageError:
        line = self.lines.get(key)
        where = f"line {line}: " if line else ""
        return UsageError(f"{where}{self.context}'{key}': {problem}", source=self.source)

    def unknown(self, data: dict[Any, Any], known: tuple[str, ...], prefix: str = "") -> None:
        for key in data:
            if key not in known:
                name = f"{prefix}.{key}" if prefix else str(key)
                raise self.fail(name, f"unknown key{did_you_mean(str(key), known)}")

    def string(self, key: str, value: Any, *, allow_none: bool = False) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {type(value).__name__}")
        return value

    def text(self, data: dict[str, Any], key: str, required: bool = True) -> str:
        """A non-blank string at `key`, stripped ('' when absent and not required)."""
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string")
        return value.strip()

    def integer(self, key: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def choice(self, key: str, value: Any, allowed: tuple[str, ...], show: bool = True) -> str:
        """`value` when it is one of `allowed`; else 'must be one of ...' (with ", got 'X'" when `show`)."""
        if value not in allowed:
            got = f", got '{value}'" if show else ""
            raise self.fail(key, f"must be one of {', '.join(allowed)}{got}")
        return str(value)

    def pattern(self, key: str, value: str, regex: re.Pattern[str], what: str) -> str:
        """`value` when `regex` matches it; else "'VALUE' is not WHAT"."""
        if not regex.match(value):
            raise self.fail(key, f"'{value}' is not {what}")
        return value

    def str_list(self, key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {type(value).__name__}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{key}[{i}]", f"expected a non-empty string, got {type(item).__name__}")
        return tuple(value)
