"""The facts vocabulary: gap values, the facts document, and reading/writing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit_bedrock.errors import UsageError

FACTS_FORMAT = "audit-bedrock-facts"
# Version 2 holds the raw facts the collectors read; --from-facts derives them again. Version 1 (written before the
# derivation stage) also holds derived values: it loads the same way, derive() overwrites what it derives.
FACTS_VERSION = 2
READABLE_VERSIONS = (1, 2)


def gap(action: str, code: str, message: str = "") -> dict[str, Any]:
    """A fact that could not be read: which IAM action, which error code, and why."""
    return {"gap": True, "action": action, "code": code, "message": message[:300]}


def is_gap(value: Any) -> bool:
    """True when `value` is a gap recorded by a collector."""
    return isinstance(value, dict) and value.get("gap") is True and "action" in value


def lone_surrogate(value: Any, where: str = "") -> str:
    """'' or the JSON path of the first string holding a lone surrogate (JSON's \\ud800 escape reads into
    one; it cannot be written out as UTF-8)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where or 'value'}: a lone surrogate (\\u{ord(value[_first_surrogate(value)]):04x}) is not text"
        return ""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = lone_surrogate(k, where) if isinstance(k, str) else ""
        found = found or lone_surrogate(v, f"{where}[{k}]" if isinstance(k, int) else f"{where}.{k}".lstrip("."))
        if found:
            return found
    return ""


def _first_surrogate(text: str) -> int:
    return next(i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF)


def dump_facts(path: Path, meta: dict[str, Any], accounts: list[dict[str, Any]]) -> bytes:
    """Serialize a facts document of raw (underived) account documents, each with its region documents."""
    # Accounts arrive in the order their scans finish; sorted, the same estate gives the same bytes.
    ordered = sorted(accounts, key=lambda a: str(a.get("account_id", "")))
    doc = {"format": FACTS_FORMAT, "version": FACTS_VERSION, "scan": meta, "accounts": ordered}
    return (json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n").encode()


def load_facts(path: str) -> dict[str, Any]:
    """Read a --save-facts file, checked against scanner/facts.schema.json; a bad file is a UsageError."""
    from audit_bedrock.inputs import FACTS_SCHEMA, checked, read_json

    doc = read_json(path, "facts file")
    if not isinstance(doc, dict) or doc.get("format") != FACTS_FORMAT:
        raise UsageError(f"not an audit-bedrock facts file (expected format '{FACTS_FORMAT}')", source=path)
    if isinstance(doc.get("version"), bool) or doc.get("version") not in READABLE_VERSIONS:
        raise UsageError(f"unsupported facts version {doc.get('version')!r}", source=path)
    checked(doc, FACTS_SCHEMA, path, "corrupt facts file")
    problem = lone_surrogate(doc)  # JSON's \ud800 reads into a str no report can write: not expressible in a schema
    if problem:
        raise UsageError(f"corrupt facts file: {problem}", source=path)
    return doc
