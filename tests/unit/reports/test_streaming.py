"""Reports are streamed in chunks: the chunks join to the bytes json.dumps / the template gave before, for every
format, and the JSON encoder (orjson, re-indented) writes json.dumps' layout and escapes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_bedrock.model import AccountOutcome, Coverage, ScanResult
from audit_bedrock.output import StagedSet
from audit_bedrock.reports import (
    COMPANIONS,
    FORMATS,
    RenderContext,
    asff,
    html,
    ocsf,
    renderer,
    sarif,
    streamer,
    streams,
)
from audit_bedrock.reports.fixplan import render_shell
from audit_bedrock.reports.json_report import CHUNK_BYTES, encode, json_chunks, to_document
from tests.support.report_samples import CATALOG, finding, sample_result
from tests.unit.reports.test_fixplan import hostile_plan


def big_result(accounts: int = 300) -> ScanResult:
    """The sample result plus `accounts` accounts with non-ASCII names and two findings each: many chunks."""
    base = sample_result(baseline=True)
    outcomes = list(base.meta.accounts)
    cov, fs = list(base.coverage), list(base.findings)
    for i in range(accounts):
        acct = f"{700000000000 + i:012d}"
        name = f"équipe-{i} \u2028 😀 \x7f"
        outcomes.append(AccountOutcome(acct, name, "Root/Prod", "scanned"))
        cov.append(Coverage(acct, "us-east-1", "scanned", False))
        fs.append(finding("BIL-001", "high", acct, name, "us-east-1", f"arn:aws:bedrock:us-east-1:{acct}:logging",
                          properties={"ratio": 0.25, "count": 2**40, "nested": {"list": list(range(20)), "e": []}}))
        fs.append(finding("BIL-010", "low", acct, name, None, f"arn:aws:iam::{acct}:role/r", status="suppressed",
                          properties={"suppression": {"reason": "accepted", "expires": None}}))
    meta = replace(base.meta, accounts=tuple(outcomes))
    return replace(base, meta=meta, coverage=tuple(sorted(cov, key=lambda c: (c.account_id, c.region))),
                   findings=tuple(sorted(fs, key=lambda f: (*f.sort_key(), f.id))),
                   not_rechecked=(replace(fs[-1], baseline="unchanged", properties={"not_rechecked": "why"}),))


def _list(value: Any) -> Any:
    return list(value)  # json_report.Rows, the lazy lists the streamed documents hold


# What each file was before it was streamed: json.dumps of the whole document, or the template's whole text.
BEFORE = {
    "findings.json": lambda r, c: (json.dumps(to_document(r, c.version), indent=2) + "\n").encode(),
    "report.html": lambda r, c: html.render_text(r, c).encode(),
    "findings.sarif": lambda r, c: (json.dumps(sarif._document(r, c, sarif._ordered((*r.findings,
                                                                                     *r.not_rechecked)), 0, ""),
                                               indent=1, ensure_ascii=False, default=_list) + "\n").encode(),
    "findings.ocsf.json": lambda r, c: ("".join(ocsf._pieces(r, c)) + "\n").encode(),
    "findings.asff.json": lambda r, c: (json.dumps(asff.findings(r, c), indent=1, ensure_ascii=False)
                                        + "\n").encode(),
    "fix-plan.json": lambda r, c: (json.dumps(c.fix_plan.to_json(), indent=1, ensure_ascii=False)  # type: ignore
                                   + "\n").encode(),
}


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, ScanResult, RenderContext]]:
    plan, _ = hostile_plan()
    ctx = RenderContext(catalog=CATALOG, version="9.9.9", baseline="old.json", fix_plan=plan)
    return [("sample", sample_result(), ctx), ("big", big_result(), ctx)]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_streamed_chunks_join_to_the_bytes_of_before(fmt: str, cases: list[tuple[str, ScanResult,
                                                                                 RenderContext]]) -> None:
    for case, result, ctx in cases:
        for name, stream in streams(fmt):
            chunks = list(stream(result, ctx))
            assert all(isinstance(c, bytes) for c in chunks), (case, name)
            joined = b"".join(chunks)
            if name in BEFORE:
                assert joined == BEFORE[name](result, ctx), (case, name)
            if name == FORMATS[fmt][0]:
                assert joined == renderer(fmt)(result, ctx), (case, name)


@pytest.mark.parametrize("fmt", ["json", "html", "sarif", "ocsf", "asff"])
def test_a_large_report_is_never_one_chunk(fmt: str, cases: list[tuple[str, ScanResult, RenderContext]]) -> None:
    _, result, ctx = cases[1]
    chunks = list(streamer(fmt)(result, ctx))
    assert len(chunks) > 2, fmt
    # a chunk is about CHUNK_BYTES: what was batched, plus at most the one piece that passed the size
    assert max(len(c) for c in chunks) < 2 * CHUNK_BYTES + 16_384, fmt


def test_fix_plan_shell_is_one_chunk_per_account(cases: list[tuple[str, ScanResult, RenderContext]]) -> None:
    _, result, ctx = cases[0]
    assert ctx.fix_plan is not None
    stream = dict(streams("fix"))["fix-plan.sh"]
    chunks = list(stream(result, ctx))
    assert len(chunks) == 1 + len({s.account_id for s in ctx.fix_plan.steps})
    assert b"".join(chunks) == render_shell(result, ctx)
    assert COMPANIONS["fix"][0][0] == "fix-plan.sh"


# ---- the encoder: json.dumps' bytes, case by case

CASES: list[tuple[str, Any]] = [
    ("empty containers", {"a": [], "b": {}, "c": [[], {}], "d": ""}),
    ("scalars", [None, True, False, 0, -1, 2**63 - 1, 1.5, -0.0, 12.0, 1e16, 1.7976931348623157e308]),
    ("nested", {"a": {"b": {"c": {"d": [1, {"e": [2, 3]}]}}}}),
    ("long list deep down", {"a": {"b": {"c": list(range(40))}}}),
    ("tuples", {"t": (1, (2, 3), ())}),
    ("escapes", {"q": "\"\\/\b\f\n\r\t\x00\x1f\x7f", "k\n\"": "v"}),
    ("non-ASCII", {"é": "ü 😀 \u2028\u2029 \ufeff 中文", "mixed": "a\x7fé\x7fb"}),
    ("integer beyond 64 bits", {"big": 2**70, "neg": -(2**65)}),
    ("keys that are not strings", {"d": {1: "a", 2.5: "b", False: "c", None: "d"}}),
]


@pytest.mark.parametrize("name,value", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("indent", [1, 2])
@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_json_chunks_write_json_dumps_bytes(name: str, value: Any, indent: int, ensure_ascii: bool,
                                            depth: int) -> None:
    want = (json.dumps(value, indent=indent, ensure_ascii=ensure_ascii) + "\n").encode()
    assert b"".join(json_chunks(value, indent, ensure_ascii, depth)) == want, name


def test_a_lone_surrogate_is_escaped_as_json_escapes_it() -> None:
    """orjson refuses it; json writes it escaped (ensure_ascii), as findings.json did."""
    value = {"name": "bad \ud800 name", "ok": "é"}
    assert encode(value, 2) == (json.dumps(value, indent=2) + "\n").encode()


def test_what_differs_from_json_parses_to_the_same_value() -> None:
    """A float below 1e-4 is written without an exponent: another spelling of the same number."""
    value = {"small": 1e-05, "tiny": 1.234e-7}
    data = encode(value, 2)
    assert json.loads(data) == value
    assert data != (json.dumps(value, indent=2) + "\n").encode()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x == 0 or abs(x) >= 1e-4)
    | st.text(),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=5), inner, max_size=6),
    max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(value=JSON, indent=st.sampled_from([1, 2]), ensure_ascii=st.booleans(), depth=st.integers(0, 3))
def test_json_chunks_match_json_dumps_on_any_document(value: Any, indent: int, ensure_ascii: bool,
                                                      depth: int) -> None:
    want = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii) + "\n"
    try:
        want_bytes = want.encode()
    except UnicodeEncodeError:  # a lone surrogate written raw (ensure_ascii off): no report could write it
        with pytest.raises(UnicodeEncodeError):
            b"".join(json_chunks(value, indent, ensure_ascii, depth))
        return
    assert b"".join(json_chunks(value, indent, ensure_ascii, depth)) == want_bytes


# ---- writing chunks

def _failing() -> Any:
    yield b"first chunk"
    raise RuntimeError("renderer bug")


def test_a_renderer_failing_midway_leaves_no_file_in_staging(tmp_path: Path) -> None:
    staged = StagedSet(tmp_path)
    staged.write("a.json", iter([b"{", b"}\n"]))
    with pytest.raises(RuntimeError):
        staged.write("b.json", _failing())
    assert staged.names == ["a.json"]
    assert sorted(p.name for p in staged.staging.iterdir()) == ["a.json"]  # no temporary file left
    assert staged.commit() == [str(tmp_path / "a.json")]
    assert (tmp_path / "a.json").read_bytes() == b"{}\n"
