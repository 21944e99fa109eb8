"""The facts vocabulary: gap values, the facts document, and reading/writing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit_bedrock.constants import ACCOUNT_ID_RE as _ACCOUNT_ID
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
    """Read a --save-facts file; a missing, unreadable or corrupt file is a UsageError."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read facts file: {exc.strerror or exc}", source=path) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read facts file: not UTF-8 text ({exc.reason})", source=path) from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"corrupt facts file (line {exc.lineno}): {exc.msg}", source=path) from None
    if not isinstance(doc, dict) or doc.get("format") != FACTS_FORMAT:
        raise UsageError(f"not an audit-bedrock facts file (expected format '{FACTS_FORMAT}')", source=path)
    if isinstance(doc.get("version"), bool) or doc.get("version") not in READABLE_VERSIONS:
        raise UsageError(f"unsupported facts version {doc.get('version')!r}", source=path)
    problem = lone_surrogate(doc)
    if problem:
        raise UsageError(f"corrupt facts file: {problem}", source=path)
    accounts = doc.get("accounts")
    if not isinstance(accounts, list) or not isinstance(doc.get("scan"), dict):
        raise UsageError("corrupt facts file: 'scan' must be an object and 'accounts' a list", source=path)
    for i, acct in enumerate(accounts):
        if not isinstance(acct, dict) or not isinstance(acct.get("account_id"), str) \
                or not isinstance(acct.get("regions", []), list):
            raise UsageError(f"corrupt facts file: accounts[{i}] is not an account document", source=path)
        problem = _account_problem(acct)
        if problem:
            raise UsageError(f"corrupt facts file: accounts[{i}]{problem}", source=path)
    problem = _scan_problem(doc["scan"])
    if problem:
        raise UsageError(f"corrupt facts file: scan.{problem}", source=path)
    return doc


_STATUSES = ("scanned", "error", "skipped")
_ACCOUNT_STATUSES = (*_STATUSES, "interrupted")


def _account_problem(acct: dict[str, Any]) -> str:
    """What makes an account document unusable for re-evaluation (its facts may hold anything)."""
    if not _ACCOUNT_ID.match(acct["account_id"]):
        return f".account_id: '{acct['account_id']}' is not a 12-digit AWS account id"
    if acct.get("status", "error") not in _ACCOUNT_STATUSES:
        return f".status: must be one of {', '.join(_ACCOUNT_STATUSES)}, got {acct.get('status')!r}"
    for key in ("account_name", "ou_path", "reason"):
        if not isinstance(acct.get(key, ""), str):
            return f".{key}: expected a string"
    for j, region in enumerate(acct.get("regions") or []):
        if not isinstance(region, dict) or not isinstance(region.get("region"), str) or not region["region"]:
            return f".regions[{j}]: expected a region document with a 'region' name"
        if region.get("status", "error") not in _STATUSES:
            return f".regions[{j}].status: must be one of {', '.join(_STATUSES)}, got {region.get('status')!r}"
    return ""


def _scan_problem(scan: dict[str, Any]) -> str:
    regions = scan.get("regions", [])
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        return "regions: expected a list of region names"
    calls = scan.get("api_calls", 0)
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
        return f"api_calls: expected a count, got {calls!r}"
    caller = scan.get("caller_account")  # findings.json requires it
    if not (isinstance(caller, str) and _ACCOUNT_ID.match(caller)):
        return f"caller_account: {caller!r} is not a 12-digit AWS account id"
    for key in ("organization_id", "started_at", "finished_at"):
        if scan.get(key) is not None and not isinstance(scan[key], str):
            return f"{key}: expected a string"
    return ""
