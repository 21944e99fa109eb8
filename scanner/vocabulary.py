"""The facts vocabulary (facts.schema.json): every fact rules may read, its type, gap and derived marks, meaning.

The schema is plain JSON Schema (draft 2020-12) with two annotations the tools here read:
`x-gap: true` (the value may be a gap, `{"gap": true, "action", "code", "message"}`; the property is then
`anyOf: [gap, type]`) and `x-derived: true` (computed from raw facts by derivation; absent from raw facts).
Paths are written as rules write them: `fact.` (a region document), `account.` (the account document),
`params.` (config values); `[]` is an element of a list, `*` a value of a map.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

Schema = dict[str, Any]
SCHEMA_FILE = "facts.schema.json"
# The roots a rule's expressions start from, and the schema definition each one reads.
ROOTS: tuple[tuple[str, str], ...] = (("fact", "region"), ("account", "account"), ("params", "params"))
# In rules `account` is the account document without its region documents (those are `fact`).
HIDDEN_IN_RULES: dict[str, tuple[str, ...]] = {"account": ("regions",)}
README_BEGIN = "<!-- facts-table:begin (generated: python -m audit_bedrock.vocabulary docs/rule-packs.md) -->"
README_END = "<!-- facts-table:end -->"


@functools.cache
def schema() -> Schema:
    """The shipped facts schema."""
    loaded: Schema = json.loads((resources.files("audit_bedrock") / SCHEMA_FILE).read_text(encoding="utf-8"))
    return loaded


def resolve(node: Schema) -> Schema:
    """`node` with a local `$ref` ('#/$defs/NAME') followed."""
    while "$ref" in node:
        name = str(node["$ref"]).removeprefix("#/$defs/")
        node = schema()["$defs"][name]
    return node


def branches(node: Schema) -> list[Schema]:
    """The alternatives a value of `node` may take (anyOf flattened, references followed)."""
    node = resolve(node)
    if "anyOf" in node:
        return [b for alt in node["anyOf"] for b in branches(alt)]
    return [node]


def is_gap_schema(node: Schema) -> bool:
    return node is schema()["$defs"]["gap"]


def root_schema(name: str) -> Schema:
    """The schema of one rule root (`fact`, `account`, `params`) as rules see it."""
    node = dict(schema()["$defs"][dict(ROOTS)[name]])
    hidden = HIDDEN_IN_RULES.get(name, ())
    node["properties"] = {k: v for k, v in node["properties"].items() if k not in hidden}
    return node


def _types(node: Schema) -> list[str]:
    t = node.get("type")
    if isinstance(t, list):
        return [str(x) for x in t]
    if isinstance(t, str):
        return [t]
    if "enum" in node:
        return sorted({type(v).__name__.replace("str", "string") for v in node["enum"]})
    if "const" in node:
        return ["boolean"] if isinstance(node["const"], bool) else ["string"]
    return ["any"]


def type_name(node: Schema) -> str:
    """A short type for people: 'boolean|null', 'list', 'map', 'policy' (gaps not included)."""
    names: list[str] = []
    for b in branches(node):
        if is_gap_schema(b):
            continue
        if b is schema()["$defs"]["policy_document"]:
            names.append("policy")
            continue
        for t in _types(b):
            if t == "object" and isinstance(b.get("additionalProperties"), dict):
                t = "map"
            elif t == "array":
                t = "list"
            if t not in names:
                names.append(t)
    return "|".join(names)


@dataclass(frozen=True)
class Fact:
    """One entry of the vocabulary."""

    path: str
    type: str
    gap: bool
    derived: bool
    description: str


def _children(node: Schema, path: str) -> Iterator[tuple[str, Schema]]:
    """(path, schema) of each named part directly under `node`: properties, list elements, map values."""
    for b in branches(node):
        if is_gap_schema(b):
            continue
        for key, sub in (b.get("properties") or {}).items():
            yield f"{path}.{key}", sub
        if isinstance(b.get("items"), dict):
            yield from _children(b["items"], f"{path}[]")
        if isinstance(b.get("additionalProperties"), dict):
            value = b["additionalProperties"]
            yield f"{path}.*", value
            yield from _children(value, f"{path}.*")


def _walk(node: Schema, path: str, derived: bool) -> Iterator[Fact]:
    for sub_path, sub in _children(node, path):
        if sub_path.endswith(".*"):
            continue  # the map's values are listed by their properties
        marked = derived or bool(sub.get("x-derived"))
        yield Fact(sub_path, type_name(sub), bool(sub.get("x-gap")), marked, str(sub.get("description", "")))
        yield from _walk(sub, sub_path, marked)


def facts() -> list[Fact]:
    """Every fact and parameter rules may read, in schema order."""
    out: list[Fact] = []
    for name, _ in ROOTS:
        out.extend(_walk(root_schema(name), name, False))
    return out


def render_text() -> str:
    """The --list-facts table."""
    rows = facts()
    width = max(len(f.path) for f in rows)
    twidth = max(len(f.type) for f in rows)
    lines = [f"{'PATH':<{width}}  {'TYPE':<{twidth}}  GAP  DERIVED  MEANING"]
    for f in rows:
        lines.append(f"{f.path:<{width}}  {f.type:<{twidth}}  {'yes' if f.gap else '-':<3}  "
                     f"{'yes' if f.derived else '-':<7}  {f.description}")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    """The fact table of docs/rule-packs.md ("Writing a rule pack")."""
    lines = ["| Path | Type | Gap? | Derived? | Meaning |", "|---|---|---|---|---|"]
    for f in facts():
        meaning = f.description.replace("|", "\\|")
        lines.append(f"| `{f.path}` | {f.type.replace('|', ' or ')} | {'yes' if f.gap else ''} | "
                     f"{'yes' if f.derived else ''} | {meaning} |")
    return "\n".join(lines) + "\n"


def replace_readme_table(text: str) -> str:
    """`text` with the block between the README markers replaced by the generated table."""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the file lacks the markers {README_BEGIN!r} ... {README_END!r}")
    return text[:start + len(README_BEGIN)] + "\n" + render_markdown() + text[end:]


def main(argv: list[str]) -> int:
    """`python -m audit_bedrock.vocabulary docs/rule-packs.md` rewrites that file's fact table from the schema."""
    if len(argv) != 1:
        print("usage: python -m audit_bedrock.vocabulary docs/rule-packs.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(replace_readme_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
