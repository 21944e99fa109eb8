"""The facts vocabulary: gap values, the facts document, and reading/writing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit_bedrock.errors import UsageError

FACTS_FORMAT = "audit-bedrock-facts"
FACTS_VERSION = 1


def gap(action: str, code: str, message: str = "") -> dict[str, Any]:
    """A fact that could not be read: which IAM action, which error code, and why."""
    return {"gap": True, "action": action, "code": code, "message": message[:300]}


def is_gap(value: Any) -> bool:
    """True when `value` is a gap recorded by a collector."""
    return isinstance(value, dict) and value.get("gap") is True and "action" in value


def dump_facts(path: Path, meta: dict[str, Any], accounts: list[dict[str, Any]]) -> bytes:
    """Serialize a facts document (one entry per account, each with its region documents)."""
    doc = {"format": FACTS_FORMAT, "version": FACTS_VERSION, "scan": meta, "accounts": accounts}
    return (json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n").encode()


def load_facts(path: str) -> dict[str, Any]:
    """Read a --save-facts file; a missing, unreadable or corrupt file is a UsageError."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read facts file: {exc.strerror or exc}", source=path) from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"corrupt facts file (line {exc.lineno}): {exc.msg}", source=path) from None
    if not isinstance(doc, dict) or doc.get("format") != FACTS_FORMAT:
        raise UsageError(f"not an audit-bedrock facts file (expected format '{FACTS_FORMAT}')", source=path)
    if doc.get("version") != FACTS_VERSION:
        raise UsageError(f"unsupported facts version {doc.get('version')!r}", source=path)
    accounts = doc.get("accounts")
    if not isinstance(accounts, list) or not isinstance(doc.get("scan"), dict):
        raise UsageError("corrupt facts file: 'scan' must be an object and 'accounts' a list", source=path)
    for i, acct in enumerate(accounts):
        if not isinstance(acct, dict) or not isinstance(acct.get("account_id"), str) \
                or not isinstance(acct.get("regions", []), list):
            raise UsageError(f"corrupt facts file: accounts[{i}] is not an account document", source=path)
    return doc
