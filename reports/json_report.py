"""The findings.json renderer (schema_version 1) and its JSON Schema."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
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
    if m.region_source:
        doc["scan"]["region_source"] = m.region_source
    if result.not_rechecked:  # additive: present only when a baseline finding could not be re-checked
        doc["not_rechecked"] = [f.to_json() for f in result.not_rechecked]
    if m.timed_out:  # additive: present only when the scan stopped at its --timeout
        doc["scan"]["timed_out"] = True
    if m.shard is not None:  # only shard runs carry it, so whole runs and merges stay byte-identical
        doc["scan"]["shard"] = {"index": m.shard[0], "count": m.shard[1]}
    return doc


def stream_utf8(chunks: Iterable[str], tail: str = "") -> bytes:
    """''.join(chunks) + tail, as UTF-8, without holding every chunk or a str copy of the whole text.

    json.dumps(indent=...) and a jinja2 render() build a list of every piece (millions of small strings for
    a 1,000-account organization) and then a str that is up to 4 bytes per character; this keeps one
    bytes buffer. Same bytes as the join.
    """
    buf = io.BytesIO()
    batch: list[str] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) >= 4096:
            buf.write("".join(batch).encode("utf-8"))
            batch.clear()
    batch.append(tail)
    buf.write("".join(batch).encode("utf-8"))
    return buf.getvalue()


def encode(doc: Any, **options: Any) -> bytes:
    """The bytes of json.dumps(doc, **options) + a newline, encoded piece by piece (see stream_utf8)."""
    return stream_utf8(json.JSONEncoder(**options).iterencode(doc), "\n")


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return encode(to_document(result, ctx.version), indent=2, sort_keys=False)


def schema() -> dict[str, Any]:
    """The JSON Schema that every findings.json satisfies."""
    text = resources.files("audit_bedrock.reports").joinpath("findings.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc
