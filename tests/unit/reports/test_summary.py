"""Terminal summary: counts, worst accounts, baseline diff, report paths; colour only on a terminal."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest

from audit_bedrock.reports.summary import render_summary, use_colour
from tests.support.report_samples import BROKEN, DEV, EVIL, PROD, sample_result

ANSI = re.compile(r"\033\[[0-9;]*m")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def summary(baseline: bool = False, colour: bool | None = None, out: io.StringIO | None = None,
            flag: bool | None = None) -> str:
    out = out if out is not None else io.StringIO()
    render_summary(sample_result(baseline=baseline), ["out/findings.json", "out/report.html"], out=out,
                   colour=colour, baseline=flag if flag is not None else baseline)
    return out.getvalue()


def test_counts_worst_accounts_and_paths() -> None:
    lines = summary().splitlines()
    assert lines[0].startswith("audit-bedrock: 3 accounts scanned, 1 error, 1 skipped; 3 regions; 42 API calls")
    assert lines[1].split() == ["open", "findings", "critical:", "0", "high:", "4", "medium:", "1", "low:", "1",
                                "info:", "0"]
    assert "suppressed     1" in lines
    worst = lines[lines.index("worst accounts:") + 1:][:4]
    assert [w.split()[0] for w in worst] == [EVIL, PROD, BROKEN, DEV]  # worst severity, then count, then id
    assert worst[0].rstrip().endswith("3 open, worst high")
    assert lines[-2:] == ["wrote out/findings.json", "wrote out/report.html"]
    assert any(line.startswith("note: suppression of BIL-003") for line in lines)
    assert any("scan is incomplete" in line for line in lines)


def test_baseline_diff_lists_new_and_fixed() -> None:
    lines = summary(baseline=True).splitlines()
    assert "vs baseline    4 new, 2 unchanged, 1 fixed" in lines
    new = [line.split() for line in lines if line.startswith("  new ")]
    fixed = [line.split() for line in lines if line.startswith("  fixed ")]
    assert len(new) == 4 and {n[2] for n in new} == {"BIL-001", "BIL-012", "BIL-010", "BIL-003"}
    assert fixed == [["fixed", "high", "BIL-001", PROD, "(payments-prod)", "us-west-2:", "Model", "invocation",
                      "logging", "is", "disabled"]]


def test_no_baseline_no_diff() -> None:
    assert not any(line.startswith("vs baseline") for line in summary().splitlines())


def test_baseline_with_nothing_changed_still_says_so() -> None:
    result = sample_result()
    result = replace(result, findings=tuple(replace(f, baseline="unchanged") for f in result.findings))
    out = io.StringIO()
    render_summary(result, [], out=out, baseline=True)
    assert "vs baseline    0 new, 6 unchanged, 0 fixed" in out.getvalue().splitlines()


@pytest.mark.parametrize(("stream", "no_color", "coloured"), [
    pytest.param(io.StringIO, "", False, id="pipe"),
    pytest.param(Tty, "", True, id="terminal"),
    pytest.param(Tty, "1", False, id="terminal-with-NO_COLOR"),
])
def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], no_color: str,
                                   coloured: bool) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    out = stream()
    assert use_colour(out) is coloured
    text = summary(baseline=True, out=out)
    assert bool(ANSI.search(text)) is coloured
    assert ANSI.sub("", text) == summary(baseline=True, colour=False)


@pytest.mark.parametrize("name", [
    pytest.param("\x1b]0;pwned\x07\x1b[2J", id="osc-retitle-and-clear"),
    pytest.param("ok\nopen findings  critical: 0", id="newline-forges-a-line"),
    pytest.param("a\u202egnp.exe", id="bidi-override"),
])
def test_hostile_account_names_cannot_drive_the_terminal(name: str) -> None:
    """issue 12: AWS-controlled values (an account name, a notice) are printed with control characters escaped."""
    result = sample_result()
    accounts = tuple(replace(a, name=name) for a in result.meta.accounts)
    result = replace(result, meta=replace(result.meta, accounts=accounts), notices=(f"merged {name}",))
    out = io.StringIO()
    render_summary(result, ["out/findings.json"], out=out, colour=False)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert sum(line.startswith("open findings") for line in text.splitlines()) == 1  # no forged line


@pytest.mark.parametrize(("accounts", "regions", "calls", "head"), [
    pytest.param(1, 1, 1, "audit-bedrock: 1 account scanned, 0 errors, 0 skipped; 1 region; 1 API call", id="one"),
    pytest.param(2, 3, 0, "audit-bedrock: 2 accounts scanned, 0 errors, 0 skipped; 3 regions; 0 API calls",
                 id="many"),
])
def test_first_line_says_proper_plurals(accounts: int, regions: int, calls: int, head: str) -> None:
    """No 'account(s)': the counts are words."""
    from audit_bedrock.model import AccountOutcome

    result = sample_result()
    meta = replace(result.meta, accounts=tuple(AccountOutcome(f"{i:012d}", f"a{i}", "Root", "scanned")
                                               for i in range(accounts)),
                   regions=tuple(f"us-east-{i}" for i in range(regions)), api_calls=calls)
    out = io.StringIO()
    render_summary(replace(result, meta=meta), [], out=out, colour=False)
    assert out.getvalue().splitlines()[0] == head
