"""The findings.json renderer (schema_version 1) and its JSON Schema."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from audit_bedrock.model import ScanResult

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

SCHEMA_VERSION = 1


def to_document(result: ScanResult, version: str) -> dict[str, Any]:
    """The findings.json document as a dict."""
    return _document(result, version, lambda items: [i.to_json() for i in items])


def _document(result: ScanResult, version: str, rows: Callable[[tuple[Any, ...]], Any]) -> dict[str, Any]:
    """The document, each list of coverage cells or findings made by `rows` (a list, or Rows to stream)."""
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
        "coverage": rows(result.coverage),
        "findings": rows(result.findings),
        "fixed": rows(result.fixed),
    }
    if m.region_source:
        doc["scan"]["region_source"] = m.region_source
    if result.not_rechecked:  # additive: present only when a baseline finding could not be re-checked
        doc["not_rechecked"] = rows(result.not_rechecked)
    if m.timed_out:  # additive: present only when the scan stopped at its --timeout
        doc["scan"]["timed_out"] = True
    if m.shard is not None:  # only shard runs carry it, so whole runs and merges stay byte-identical
        doc["scan"]["shard"] = {"index": m.shard[0], "count": m.shard[1]}
    return doc


CHUNK_BYTES = 1 << 16  # the size of the chunks a report is written in
Piece = TypeVar("Piece", str, bytes)


class Rows:
    """A list made one item at a time as it is encoded: `make(item)` for each item (json_chunks walks it)."""

    def __init__(self, items: Sequence[Any], make: Callable[[Any], Any]) -> None:
        self.items, self.make = items, make

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return map(self.make, self.items)


def _default(value: Any) -> Any:
    if isinstance(value, Rows):  # inside a value encoded whole: made at once
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_NON_ASCII = re.compile(rb"[\x7f-\xff]+")  # DEL and UTF-8 multi-byte sequences: json's ensure_ascii escapes them
_INDENTS = re.compile(rb"\n *")


def _escape_run(match: re.Match[bytes]) -> bytes:
    return encode_basestring_ascii(match[0].decode("utf-8"))[1:-1].encode("ascii")


def _whole(value: Any, level: int, indent: int, ensure_ascii: bool) -> bytes:
    """json.dumps(value, indent=indent, ensure_ascii=ensure_ascii) as UTF-8, nested `level` deep (every line after
    the first indented by `level` more), encoded by orjson.

    orjson writes json's layout with 2 spaces; no JSON string holds a raw newline, so each newline starts an
    indentation that is re-sized exactly. With ensure_ascii, every non-ASCII character and DEL are escaped as
    json escapes them. Where orjson refuses a value json writes (a lone surrogate, an integer beyond 64 bits, a
    key that is not a string) json encodes it. What differs from json: a float below 1e-4 is written without
    an exponent (0.00001, same number) and NaN or an infinity as null (json writes NaN, which is not JSON).
    """
    try:
        data = orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2)
    except TypeError:
        text = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, default=_default)
        return text.replace("\n", "\n" + " " * (indent * level)).encode("utf-8")
    if indent == 2:
        if level:
            data = data.replace(b"\n", b"\n" + b"  " * level)
    elif b"\n" in data:
        shift = indent * level
        data = _INDENTS.sub(lambda m: b"\n" + b" " * ((len(m[0]) - 1) // 2 * indent + shift), data)
    if ensure_ascii and not (data.isascii() and b"\x7f" not in data):
        data = _NON_ASCII.sub(_escape_run, data)
    return data


def _walked(value: Any, level: int, depth: int) -> bool:
    """Whether json_chunks writes `value` piece by piece rather than whole."""
    if isinstance(value, Rows):
        return len(value) > 0
    if isinstance(value, dict):
        return level < depth and bool(value) and all(isinstance(k, str) for k in value)
    return isinstance(value, (list, tuple)) and bool(value) and (level < depth or len(value) > WHOLE_AT_MOST)


WHOLE_AT_MOST = 16  # a list nested deeper than json_chunks' depth is walked only when longer than this


def _pieces(value: Any, level: int, indent: int, ensure_ascii: bool, depth: int) -> Iterator[bytes]:
    if not _walked(value, level, depth):
        yield _whole(value, level, indent, ensure_ascii)
        return
    inner = b"\n" + b" " * (indent * (level + 1))
    sep = b"," + inner
    if isinstance(value, dict):
        yield b"{"
        for i, (key, item) in enumerate(value.items()):
            yield (sep if i else inner) + _whole(key, 0, indent, ensure_ascii) + b": "
            yield from _pieces(item, level + 1, indent, ensure_ascii, depth)
        yield b"\n" + b" " * (indent * level) + b"}"
        return
    yield b"["
    for i, item in enumerate(value):
        yield sep if i else inner
        yield from _pieces(item, level + 1, indent, ensure_ascii, depth)
    yield b"\n" + b" " * (indent * level) + b"]"


def _batches(pieces: Iterable[Piece], size: int) -> Iterator[list[Piece]]:
    """The pieces in consecutive lists of about `size` bytes or characters each."""
    batch: list[Piece] = []
    held = 0
    for piece in pieces:
        batch.append(piece)
        held += len(piece)
        if held >= size:
            yield batch
            batch = []
            held = 0
    if batch:
        yield batch


def batched(pieces: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The pieces joined into chunks of about `size` bytes."""
    return (b"".join(batch) for batch in _batches(pieces, size))


def json_chunks(doc: Any, indent: int, ensure_ascii: bool = True, depth: int = 1) -> Iterator[bytes]:
    """The bytes of json.dumps(doc, indent=indent, ensure_ascii=ensure_ascii) + a newline, in chunks (see _whole
    for the two ways the bytes can differ from json's): the containers less than `depth` deep, long lists and
    Rows are written piece by piece, every other value whole."""
    yield from batched(itertools.chain(_pieces(doc, 0, indent, ensure_ascii, depth), (b"\n",)))


def utf8_chunks(pieces: Iterable[str], tail: str = "") -> Iterator[bytes]:
    """''.join(pieces) + tail as UTF-8, in chunks of about CHUNK_BYTES, never the whole text at once.

    A jinja2 render() builds a list of every piece (millions of small strings for a 1,000-account
    organization) and then a str of up to 4 bytes per character; this holds one chunk.
    """
    return ("".join(batch).encode("utf-8") for batch in _batches(itertools.chain(pieces, (tail,)), CHUNK_BYTES))


def stream_utf8(pieces: Iterable[str], tail: str = "") -> bytes:
    """''.join(pieces) + tail, as UTF-8 (built from utf8_chunks)."""
    return b"".join(utf8_chunks(pieces, tail))


def encode(doc: Any, indent: int, ensure_ascii: bool = True) -> bytes:
    """The bytes of json.dumps(doc, indent=indent, ensure_ascii=ensure_ascii) + a newline (see json_chunks)."""
    return b"".join(json_chunks(doc, indent, ensure_ascii))


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    """findings.json in chunks: each coverage cell and finding made into a dict only as it is written."""
    return json_chunks(_document(result, ctx.version, lambda items: Rows(items, lambda i: i.to_json())), indent=2)


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return b"".join(stream(result, ctx))


def schema() -> dict[str, Any]:
    """The JSON Schema that every findings.json satisfies."""
    text = resources.files("audit_bedrock.reports").joinpath("findings.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc
