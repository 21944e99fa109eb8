"""The CLI's error paths, as a table of separate processes: each ends in one line on stderr with the documented exit
code (README "Exit codes"), never a traceback, and never exit 1 (which means "findings")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from audit_bedrock import cli
from audit_bedrock.constants import EXIT_INTERNAL, EXIT_USAGE, EXIT_WRITE_FAILED
from audit_bedrock.facts import FACTS_VERSION
from tests.conftest import moto_process, run_cli

# A case that wrongly got as far as an AWS call would hit this closed port and fail differently (and late).
DEAD_ENDPOINT = "http://127.0.0.1:9"
EMPTY_FACTS = {"format": "audit-bedrock-facts", "version": FACTS_VERSION,
               "scan": {"regions": ["us-east-1"], "caller_account": "111111111111"}, "accounts": []}


@dataclass(frozen=True)
class Case:
    """Run with `args` ({tmp} replaced) and `env`; expect `code` and each of `expect` on stderr."""

    args: list[str]
    code: int
    expect: list[str]
    env: dict[str, str] = field(default_factory=dict)
    moto: bool = False  # against the module's moto server instead of the dead endpoint
    setup: str = ""  # "facts": {tmp}/facts.json holds an empty facts file; "blocked": ...and findings.json is a folder


CASES = [
    pytest.param(Case([], EXIT_USAGE, ["AWS_PROFILE", "doesnotexist"], env={"AWS_PROFILE": "doesnotexist"}),
                 id="aws-profile-env-unknown"),
    pytest.param(Case(["--profile", "doesnotexist"], EXIT_USAGE, ["--profile", "doesnotexist"]),
                 id="profile-flag-unknown"),
    pytest.param(Case(["--output-dir", "/proc/nope/out"], EXIT_USAGE, ["--output-dir /proc/nope/out",
                                                                      "cannot write there"]),
                 id="output-dir-unwritable"),
    pytest.param(Case(["--output-dir", "{tmp}/facts.json/out"], EXIT_USAGE, ["is not a folder"], setup="facts"),
                 id="output-dir-under-a-file"),
    pytest.param(Case(["--save-facts", "/proc/nope/facts.json"], EXIT_USAGE, ["--save-facts", "cannot write there"]),
                 id="save-facts-unwritable"),
    pytest.param(Case(["--output-dir", "s3://no-such-bucket/x"], EXIT_USAGE,
                      ["--output-dir s3://no-such-bucket/x", "cannot write there"], moto=True),
                 id="s3-bucket-missing"),
    pytest.param(Case(["--fail-on-new"], EXIT_USAGE, ["--fail-on-new needs --baseline"]), id="fail-on-new-alone"),
    pytest.param(Case(["--org", "--regions", "us-east-1", "--output-dir", "{tmp}/out"], EXIT_USAGE,
                      ["not in an organization", "--accounts"], moto=True),
                 id="org-outside-an-organization"),
    pytest.param(Case(["--from-facts", "{tmp}/facts.json", "--format", "json,html", "--output-dir", "{tmp}/out"],
                      EXIT_WRITE_FAILED, ["cannot write", "findings.json"], setup="blocked"),
                 id="write-fails-after-the-scan"),
]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """One moto server (no organization in it) for the cases that need AWS to answer."""
    with moto_process() as url:
        yield url


@pytest.mark.parametrize("case", CASES)
def test_error_path_is_one_line_with_the_documented_code(case: Case, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    if case.setup:
        (tmp_path / "facts.json").write_text(json.dumps(EMPTY_FACTS))
    if case.setup == "blocked":  # the scan succeeds; one report cannot be written, the other must still be
        (tmp_path / "out" / "findings.json").mkdir(parents=True)
    endpoint = request.getfixturevalue("moto_url") if case.moto else DEAD_ENDPOINT
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    proc = run_cli(args, endpoint, timeout=120, **case.env)
    assert proc.returncode == case.code, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
    for text in case.expect:
        assert text in errors[0], proc.stderr
    if case.setup == "blocked":  # what could be written was, in the folder the error names; nothing was replaced
        kept = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("unfinished-")]
        assert len(kept) == 1 and str(kept[0]) in errors[0], proc.stderr
        assert (kept[0] / "report.html").stat().st_size > 0 and (kept[0] / "findings.json").is_file()
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["findings.json", kept[0].name]
        assert (tmp_path / "out" / "findings.json").is_dir()  # what was there is untouched
    elif case.code == EXIT_USAGE:
        assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize(("verbose", "traceback"), [
    pytest.param([], False, id="quiet-by-default"),
    pytest.param(["-v"], True, id="traceback-with-v"),
])
def test_an_unexpected_exception_is_one_line_and_exit_5(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], verbose: list[str],
                                                        traceback: bool) -> None:
    def boom(ns: object) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(cli, "execute", boom)
    assert cli.main([*verbose, "--accounts", "111111111111"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "audit-bedrock: internal error: RuntimeError: something nobody expected" in err
    assert ("Traceback" in err) is traceback
    assert ("run with -v" in err) is not traceback
