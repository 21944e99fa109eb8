"""The findings.json renderer (schema_version 1) and its JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from audit_bedrock.model import ScanResult

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

SCHEMA_VERSION = 1


def to_document(result: ScanResult, version: str) -> dict[str, Any]:
    """The findings.json document as a dict."""
    m = result.meta
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "audit-bedrock", "version": version},
        "scan": {
            "started_at": m.started_at, "finished_at": m.finished_at,
            "organization_id": m.organization_id, "caller_account": m.caller_account,
            "regions": list(m.regions), "accounts": [a.to_json() for a in m.accounts],
            "api_calls": m.api_calls, "complete": not m.incomplete, "interrupted": m.interrupted,
            "notices": list(result.notices),
        },
        "summary": result.summary(),
        "coverage": [c.to_json() for c in result.coverage],
        "findings": [f.to_json() for f in result.findings],
        "fixed": [f.to_json() for f in result.fixed],
    }
    if m.shard is not None:  # only shard runs carry it, so whole runs and merges stay byte-identical
        doc["scan"]["shard"] = {"index": m.shard[0], "count": m.shard[1]}
    return doc


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return (json.dumps(to_document(result, ctx.version), indent=2, sort_keys=False) + "\n").encode()


def schema() -> dict[str, Any]:
    """The JSON Schema that every findings.json satisfies."""
    text = resources.files("audit_bedrock.reports").joinpath("findings.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc
