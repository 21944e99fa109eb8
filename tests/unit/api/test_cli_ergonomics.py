"""CLI ergonomics: case-insensitive choices, one-line value errors, --help with examples, --explain wrapped and
pointing to --list-rules, --output-dir - on stdout, and -q shortening the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit_bedrock import api, cli
from audit_bedrock.facts import FACTS_VERSION
from audit_bedrock.reports.summary import render_summary
from tests.conftest import run_cli, validate_findings
from tests.support.report_samples import sample_result  # several accounts with findings

EMPTY_FACTS = {"format": "audit-bedrock-facts", "version": FACTS_VERSION,
               "scan": {"regions": ["us-east-1"], "caller_account": "111111111111"}, "accounts": []}


@pytest.mark.parametrize(("args", "attr", "value"), [
    pytest.param(["--fail-on", "High"], "fail_on", "high", id="fail-on-title-case"),
    pytest.param(["--fail-on", "NONE"], "fail_on", "none", id="fail-on-upper"),
    pytest.param(["--print-policy", "Caller"], "print_policy", "caller", id="print-policy"),
])
def test_choices_are_case_insensitive(args: list[str], attr: str, value: str) -> None:
    assert getattr(cli.build_parser().parse_args(args), attr) == value


def test_format_is_case_insensitive() -> None:
    ns = cli.build_parser().parse_args(["--format", "HTML,Json"])
    assert cli.run_options(ns).output.formats == ("html", "json")


@pytest.mark.parametrize("args", [
    pytest.param(["--fail-on", "hgh"], id="bad-choice"),
    pytest.param(["--max-workers", "many"], id="bad-int"),
    pytest.param(["--accounts", "12"], id="bad-account"),
    pytest.param(["--no-such-flag"], id="unknown-flag"),
])
def test_a_bad_value_is_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("audit-bedrock: error: ") and "--help" in err


def test_help_has_examples_and_the_output_dir_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "audit-bedrock --demo" in out
    assert "default ./audit-bedrock-report" in out
    assert "4 a report could not be written" in " ".join(out.split())


def test_explain_unknown_points_to_list_rules() -> None:
    rules = api.catalog_rules(api.ScanOptions())
    with pytest.raises(api.UsageError, match="--list-rules"):
        api.catalog_text(rules, "NOPE")


@pytest.mark.parametrize("width", [pytest.param(50, id="narrow"), pytest.param(100, id="wide")])
def test_explain_is_wrapped_and_mentions_severity_when(width: int) -> None:
    text = api.catalog_text(api.catalog_rules(api.ScanOptions()), "BIL-004", width=width)
    assert all(len(line) <= width for line in text.splitlines() if not line.startswith("  http"))
    assert "severity_when" in text and "default severity medium" in text


def test_output_dir_dash_streams_findings_json(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(EMPTY_FACTS))
    proc = run_cli(["--from-facts", str(facts), "--output-dir", "-"], None, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    validate_findings(json.loads(proc.stdout))  # stdout is findings.json and nothing else
    assert "wrote <stdout>" in proc.stderr  # the summary moved to stderr
    assert not list(tmp_path.glob("audit-bedrock-report*"))


def test_output_dir_dash_takes_json_only() -> None:
    with pytest.raises(api.UsageError, match="--format json"):
        cli.run_options(cli.build_parser().parse_args(["--output-dir", "-", "--format", "html"]))


@pytest.mark.parametrize(("quiet", "most_lines"), [
    pytest.param([], 99, id="full"),
    pytest.param(["-q"], 5, id="brief"),
    pytest.param(["-q", "-q"], 0, id="silent"),
])
def test_quiet_shortens_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet: list[str],
                                    most_lines: int) -> None:
    ns = cli.build_parser().parse_args([*quiet, "--output-dir", str(tmp_path)])
    out = cli.run_options(ns).output
    if out.summary:
        render_summary(sample_result(), [str(tmp_path / "findings.json")], brief=out.brief)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= most_lines
    assert ("worst accounts:" in lines) is (most_lines == 99)


def test_list_rules_json_honours_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("severity_overrides:\n  BIL-001: low\ndisabled_rules: [BIL-015]\n")
    assert cli.main(["--list-rules", "--format", "JSON", "--config", str(cfg)]) == 0
    rules = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    assert (rules["BIL-001"]["severity"], rules["BIL-001"]["default_severity"]) == ("low", "high")
    assert rules["BIL-015"]["enabled"] is False and rules["BIL-005"]["enabled"] is True
    assert rules["BIL-004"]["severity_varies"] is True  # severity_when, no override


@pytest.mark.parametrize(("flags", "kept"), [
    pytest.param(["--rules", "bil-001,BIL-005"], {"BIL-001", "BIL-005"}, id="only"),
    pytest.param(["--skip-rules", "BIL-001"], None, id="skip"),
])
def test_rule_filters(flags: list[str], kept: set[str] | None) -> None:
    settings = api.load_settings(cli.run_options(cli.build_parser().parse_args(flags)))
    ids = {r.id for r in settings.rules}
    if kept is not None:
        assert ids == kept
    else:
        assert "BIL-001" not in ids and "BIL-005" in ids


def test_rule_filter_refuses_an_unknown_rule() -> None:
    with pytest.raises(api.UsageError, match="--rules: no such rule 'BIL-999'"):
        api.load_settings(cli.run_options(cli.build_parser().parse_args(["--rules", "BIL-999"])))


@pytest.mark.parametrize(("minimum", "allowed"), [
    pytest.param(None, {"critical", "high", "medium", "low", "info"}, id="all"),
    pytest.param("high", {"critical", "high"}, id="high"),
])
def test_min_severity_and_the_markdown_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               minimum: str | None, allowed: set[str]) -> None:
    options = api.RunOptions(output=api.OutputOptions(formats=("json", "markdown"), output_dir=str(tmp_path),
                                                      min_severity=minimum, summary=False))
    settings = api.load_settings(options)
    result = sample_result()
    api.write_reports(result, settings, options)
    doc = json.loads((tmp_path / "findings.json").read_text())
    assert {f["severity"] for f in doc["findings"]} <= allowed
    assert len(doc["findings"]) == sum(1 for f in result.findings if f.severity in allowed)
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("## audit-bedrock") and "| critical | high | medium | low | info |" in md
    assert "<script" not in md  # names from AWS are escaped


@pytest.mark.parametrize(("args", "code", "stream", "wanted"), [
    pytest.param(["--explain", "NOPE"], 2, "err", "--list-rules", id="unknown-rule-one-line"),
    pytest.param(["--explain", "bil-004"], 0, "out", "severity_when", id="case-insensitive-severity-when"),
    pytest.param(["--explain", "BIL-001"], 0, "out", "Remediation:", id="no-severity-when"),
])
def test_explain_on_the_command_line(args: list[str], code: int, stream: str, wanted: str,
                                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--explain wraps to the terminal (shutil.get_terminal_size reads COLUMNS first); an unknown rule is one
    line, exit 2, pointing to --list-rules."""
    monkeypatch.setenv("COLUMNS", "60")
    assert cli.main(args) == code
    captured = capsys.readouterr()
    text = captured.err if stream == "err" else captured.out
    assert wanted in text
    if code:
        assert len(text.strip().splitlines()) == 1 and not captured.out
    else:
        assert all(len(line) <= 60 for line in text.splitlines() if not line.startswith("  http"))
        assert ("severity_when" in text) is (args[1].upper() == "BIL-004")  # BIL-001 has none
