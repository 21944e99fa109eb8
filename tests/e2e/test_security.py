"""Security of what is written: hostile AWS strings are escaped, secrets never leak, writes are atomic."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock import output
from audit_bedrock.aws.redact import SecretFilter
from audit_bedrock.reports import FORMATS
from audit_bedrock.standin import estate as builders
from audit_bedrock.standin.proxy import Proxy, Rule, match
from tests.conftest import run_cli, validate_facts, validate_findings
from tests.support import DEMO_SCAN_REGIONS, Estate, seeded_estate, shared_demo_estate

# --- hostile strings from AWS ----------------------------------------------------------------------

PAYLOADS = {
    "account": '<script>alert("acct-pwned")</script>',
    "account2": "\"'><svg onload=alert('acct2-pwned')> {{7*7}} ${7*7}",
    "ou": "<img src=x onerror=alert('ou-pwned')>",
    "log_group": "/bedrock/<script>lg-pwned</script>",
    "prefix": '</script><script>alert("prefix-pwned")</script>',
    "large_prefix": "<iframe src=javascript:alert('large-pwned')>",
    "policy_group": "<b onmouseover=alert('policy-pwned')>x</b>",
}
MARKERS = {k: re.search(r"[a-z0-9]+-pwned", v).group(0) for k, v in PAYLOADS.items()}  # type: ignore[union-attr]


def seed_hostile(endpoint: str) -> dict[str, str]:
    """An organization of our own whose names, prefixes and policy text carry markup."""
    mgmt = builders.AccountClients(endpoint, {"aws_access_key_id": "seed", "aws_secret_access_key": "seed"})
    org = builders.organization(mgmt, {PAYLOADS["ou"]: None})
    ids = {key: org.add_account(PAYLOADS[key], PAYLOADS["ou"], email=f"{key}@example.com")
           for key in ("account", "account2")}
    c, acct = builders.assume(mgmt, ids["account"], "seed"), ids["account"]
    deliver = builders.policy({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                             "Resource": f"arn:aws:logs:us-east-1:{acct}:log-group:{PAYLOADS['policy_group']}:*"})
    role = builders.delivery_role(c, "BedrockLogs", builders.trust(None), inline=deliver)
    # An orphaned role too (BIL-010): its policy text names the hostile group.
    builders.delivery_role(c, "LeftOver", builders.trust(None), inline=deliver)
    builders.bucket(c, "us-east-1", "hostile-large-data")
    # us-east-1: CloudWatch to a log group that does not exist, through a role whose policy targets another.
    builders.put_logging(c, "us-east-1", {
        "cloudWatchConfig": builders.cloudwatch_config(PAYLOADS["log_group"], role,
                                                     ("hostile-large-data", PAYLOADS["large_prefix"])),
        "textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": False})
    # us-west-2: S3 with a hostile prefix and no bucket policy.
    builders.bucket(c, "us-west-2", "hostile-logs-west")
    builders.put_logging(c, "us-west-2", {**builders.s3_config("hostile-logs-west", PAYLOADS["prefix"]),
                                        "textDataDeliveryEnabled": True})
    return ids


@pytest.fixture(scope="module")
def hostile_reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """Every registered report format, written for the hostile organization."""
    out = tmp_path_factory.mktemp("hostile")
    with seeded_estate(seed_hostile) as estate:
        proc = run_cli(["--org", "--regions", "us-east-1,us-west-2", "--format", ",".join(FORMATS),
                        "--output-dir", str(out / "reports"), "--save-facts", str(out / "facts.json")],
                       estate.endpoint)
        assert proc.returncode in (1, 3), proc.stderr[-3000:]
        validate_facts(json.loads((out / "facts.json").read_text()))
        (out / "stdout.txt").write_text(proc.stdout)
        yield out, estate.ids


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.slow
def test_hostile_values_reach_the_json_intact(hostile_reports: tuple[Path, dict[str, str]]) -> None:
    """The JSON reports carry each hostile value exactly (json escapes it; nothing is mangled or lost)."""
    out, _ = hostile_reports
    doc = json.loads((out / "reports" / "findings.json").read_text())
    validate_findings(doc)
    everything = "\n".join(_strings(doc))
    for key in PAYLOADS:  # names, OU path, log group, prefixes, and policy text (BIL-010's message)
        assert PAYLOADS[key] in everything, f"{key} payload missing from findings.json"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_report_escapes_hostile_values(hostile_reports: tuple[Path, dict[str, str]], fmt: str) -> None:
    """No report carries a hostile value raw where it would be live markup; each is still shown, escaped."""
    out, _ = hostile_reports
    path = out / "reports" / FORMATS[fmt][0]
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".json", ".sarif"):
        doc = json.loads(text)  # a JSON document: strings are data, escaping is json's
        values = "\n".join(_strings(doc))
        shown = [k for k, m in MARKERS.items() if m in values]
        assert shown, f"no hostile value reached {path.name}"
        for key in shown:  # wherever a value appears, it appears whole: nothing truncated or re-encoded
            assert PAYLOADS[key] in values, f"{key} appears mangled in {path.name}"
        return
    if path.suffix == ".md":  # GitHub renders Markdown and the HTML inside it: every special character escaped
        for risky in ("<script", "<img", "<svg", "<iframe", "<b ", "](javascript:"):
            assert risky not in text, f"live markup {risky!r} in {path.name}"
        assert any(m in text for m in MARKERS.values()), f"no hostile value reached {path.name}"
        return
    assert path.suffix == ".html", f"no escaping check for {path.suffix} files: add one"
    for key, payload in PAYLOADS.items():
        assert payload not in text, f"raw {key} payload in {path.name}"
    for risky in ("<script>alert(", "<img src=x", "<svg onload", "<iframe", "<b onmouseover", "</script><script>"):
        assert risky not in text, f"live markup {risky!r} in {path.name}"
    rendered = [k for k, m in MARKERS.items() if m in text]
    assert set(rendered) == set(PAYLOADS), f"not shown (escaped) in the HTML: {set(PAYLOADS) - set(rendered)}"


def test_html_format_is_registered() -> None:
    """The escaping check above covers HTML only while the HTML renderer is registered."""
    assert "html" in FORMATS


# --- secrets ------------------------------------------------------------------------------------------

CANARY_SECRET = "CANARYsecretKEY0123456789abcdefghijklmnop"
CANARY_TOKEN = "CANARYsessionTOKEN" + "Zz9" * 40


@pytest.fixture(scope="module")
def estate(request: pytest.FixtureRequest) -> Estate:
    return shared_demo_estate(request.config)


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s[:12] + "..." for s in secrets if s and s in text]


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("fault", [
    pytest.param(None, id="clean-scan"),
    pytest.param("deny-assume", id="assume-role-denied"),
    pytest.param("drop-twice", id="connections-dropped-then-retried"),
    pytest.param("deny-region", id="region-denied"),
    pytest.param("deny-caller", id="caller-rejected"),
])
def test_credentials_never_written(estate: Estate, tmp_path: Path, fault: str | None) -> None:
    """A canary secret key and session token (and the keys AssumeRole mints) appear in no report, facts
    file, log line (-vvv, botocore's debug logging included) or error message."""
    with Proxy(estate.endpoint) as proxy:
        if fault == "deny-assume":
            proxy.add(Rule(match(assume_role_into=estate.ids["data-science"]), "deny"))
        elif fault == "drop-twice":  # transient: botocore logs the connection errors and retries them
            proxy.add(Rule(match(region="eu-west-1"), "drop", first_attempts=2))
        elif fault == "deny-region":
            proxy.add(Rule(match(region="eu-west-1", service="bedrock"), "deny"))
        elif fault == "deny-caller":
            proxy.add(Rule(match(operation="GetCallerIdentity"), "deny"))
        proc = run_cli(["--org", "--regions", ",".join(DEMO_SCAN_REGIONS), "-vvv", "--output-dir",
                        str(tmp_path / "out"), "--save-facts", str(tmp_path / "out" / "facts.json")],
                       proxy.url, cwd=tmp_path, AWS_SECRET_ACCESS_KEY=CANARY_SECRET, AWS_SESSION_TOKEN=CANARY_TOKEN)
        minted = list(proxy.assumed_secrets)
        faulted = [s for s in proxy.seen() if s.outcome != "forwarded"]
    assert bool(faulted) == (fault is not None), "the fault was not injected"
    if fault == "deny-caller":
        assert proc.returncode == 2 and "cannot identify the caller" in proc.stderr, proc.stderr[-2000:]
    else:
        assert proc.returncode in (1, 3), proc.stderr[-2000:]
        validate_facts(json.loads((tmp_path / "out" / "facts.json").read_text()))
        assert minted, "no AssumeRole answer was seen: the minted-secret check would be empty"
        assert "DEBUG" in proc.stderr  # -vvv really logged at debug level
    secrets = [CANARY_SECRET, CANARY_TOKEN, *minted]
    where = {"stdout": proc.stdout, "stderr": proc.stderr, "files": _all_text(tmp_path)}
    for name, text in where.items():
        assert not _leaks(text, secrets), f"a secret leaked into {name}: {_leaks(text, secrets)}"


# --- atomic writes --------------------------------------------------------------------------------------

class _HalfWriter:
    """A file object that writes half of what it is given, then fails like a full disk."""

    def __init__(self, fh: Any, exc: BaseException) -> None:
        self._fh = fh
        self._exc = exc

    def write(self, data: bytes) -> int:
        self._fh.write(data[: len(data) // 2])
        self._fh.flush()
        raise self._exc

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


@pytest.mark.parametrize("exc", [
    pytest.param(OSError(errno.ENOSPC, "No space left on device"), id="disk-full"),
    pytest.param(KeyboardInterrupt(), id="ctrl-c"),
])
def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    path = tmp_path / "findings.json"
    path.write_bytes(b'{"old": true}\n')
    real_fdopen = os.fdopen
    monkeypatch.setattr(output.os, "fdopen", lambda fd, mode: _HalfWriter(real_fdopen(fd, mode), exc))
    with pytest.raises(type(exc)):
        output.write_atomic(path, b'{"new": true, "padding": "' + b"x" * 10000 + b'"}\n')
    assert path.read_bytes() == b'{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"], "a temporary file was left behind"


def test_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.html"
    path.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(output.os, "replace", refuse)
    with pytest.raises(OSError):
        output.write_atomic(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "findings.sarif"
    output.write_atomic(path, b"first version, longer than the second\n")
    output.write_atomic(path, b"second\n")
    assert path.read_bytes() == b"second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["findings.sarif"]


def test_every_report_goes_through_write_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI writes each report (and the facts file) through write_atomic, nothing directly."""
    from audit_bedrock.cli import main

    facts = _facts_file(tmp_path)
    written: list[Path] = []
    real = output.write_atomic

    def spy(path: Path, data: bytes) -> None:
        written.append(Path(path))
        real(path, data)

    monkeypatch.setattr(output, "write_atomic", spy)
    out = tmp_path / "out"
    rc = main(["--from-facts", str(facts), "--format", ",".join(FORMATS), "--output-dir", str(out), "-q", "-q"])
    assert rc == 1
    from audit_bedrock.reports import outputs
    names = sorted(name for f in FORMATS for name, _ in outputs(f))
    assert sorted(p.name for p in written) == names
    staging = {p.parent for p in written}  # issue 12: all into one staging folder, then switched in together
    assert len(staging) == 1 and staging.pop().parent == out
    assert sorted(p.name for p in out.iterdir()) == names  # no staging folder, no lock file left


@pytest.mark.parametrize(("line", "secret"), [
    pytest.param("Sending http request: <AWSPreparedRequest headers={'X-Amz-Date': b'20260101T000000Z', "
                 "'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEXAMPLETOKEN', 'Authorization': b'AWS4-HMAC'}>",
                 "IQoJb3JpZ2luX2VjEXAMPLETOKEN", id="request-header"),
    pytest.param("https://s3.amazonaws.com/b/k?X-Amz-Security-Token=FwoGZXIvEXAMPLE%2Ftoken&X-Amz-Expires=60",
                 "FwoGZXIvEXAMPLE%2Ftoken", id="presigned-query"),
    pytest.param("Response body:\nb'<AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>"
                 "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>"
                 "<SessionToken>FQoGZXIvYXdzEXAMPLE</SessionToken>'",
                 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", id="assume-role-body"),
    pytest.param("Response body:\nb'<SessionToken>FQoGZXIvYXdzEXAMPLE</SessionToken>'", "FQoGZXIvYXdzEXAMPLE",
                 id="assume-role-token"),
    pytest.param("parsed: {'Credentials': {'SecretAccessKey': 'abcdEXAMPLEsecret123', 'Expiration': 1}}",
                 "abcdEXAMPLEsecret123", id="parsed-dict"),
    pytest.param("odd place for a registered value: REGISTEREDsecretVALUE!", "REGISTEREDsecretVALUE",
                 id="registered-value"),
    # issue 12: -vvv logs the signed AssumeRole request (botocore.endpoint "Making request ... with params")
    pytest.param("Making request for OperationModel(name=AssumeRole) with params: {'headers': {'Authorization': "
                 "b'AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261201/us-east-1/sts/aws4_request, "
                 "SignedHeaders=content-type;host;x-amz-date, Signature=3f1c0ffee0ddba11'}}",
                 "3f1c0ffee0ddba11", id="sigv4-signature"),
    pytest.param("Making request with params: {'body': {'Action': 'AssumeRole', 'ExternalId': 'ext-id-shh', "
                 "'RoleSessionName': 'x'}}", "ext-id-shh", id="external-id-dict"),
    pytest.param("Sending http request: b'Action=AssumeRole&ExternalId=ext-id-shh&RoleArn=arn'", "ext-id-shh",
                 id="external-id-form-body"),
    pytest.param("https://sts.amazonaws.com/?X-Amz-Signature=abcdef0123456789&X-Amz-Date=1", "abcdef0123456789",
                 id="presigned-signature"),
])
def test_log_lines_are_redacted(line: str, secret: str) -> None:
    from audit_bedrock.aws.redact import REDACTED, register_secret

    register_secret("REGISTEREDsecretVALUE")
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1, "%s", (line,), None)
    assert SecretFilter().filter(record) is True
    assert secret not in record.getMessage() and REDACTED in record.getMessage()


def test_exception_text_is_redacted() -> None:
    from audit_bedrock.aws.redact import register_secret

    register_secret("EXCEPTIONsecretVALUE")
    try:
        raise RuntimeError("failed with key EXCEPTIONsecretVALUE")
    except RuntimeError:
        record = logging.LogRecord("audit_bedrock", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    SecretFilter().filter(record)
    assert "EXCEPTIONsecretVALUE" not in logging.Formatter().format(record)


def test_log_lines_are_one_line_without_terminal_escapes() -> None:
    """issue 12: a botocore error message carrying ESC sequences or a newline cannot drive the terminal."""
    record = logging.LogRecord("audit_bedrock", logging.WARNING, __file__, 1, "%s: failed: %s",
                               ("111111111111", "bad\x1b]0;pwned\x07\nforged line"), None)
    SecretFilter().filter(record)
    message = record.getMessage()
    assert "\x1b" not in message and "\x07" not in message and "\n" not in message


@pytest.mark.parametrize(("umask", "private", "mode"), [
    pytest.param(0o022, False, 0o644, id="report-umask-022"),
    pytest.param(0o077, False, 0o600, id="report-umask-077"),
    pytest.param(0o027, False, 0o640, id="report-umask-027"),
    pytest.param(0o000, True, 0o600, id="facts-always-0600"),
])
def test_written_files_respect_the_umask(tmp_path: Path, umask: int, private: bool, mode: int) -> None:
    """issue 12: reports were chmod 0644 whatever the umask; --save-facts files (full policies) are 0600."""
    from audit_bedrock.output import write_atomic

    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "f.json", b"{}\n", private=private)
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == mode


# --- the report set is staged and switched in whole; one run at a time per folder (issue 12) ----------------------

def _facts_file(tmp_path: Path) -> Path:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"format": "audit-bedrock-facts", "version": 2,
                                 "scan": {"caller_account": "111111111111", "regions": ["us-east-1"]},
                                 "accounts": [{"account_id": "111111111111", "account_name": "a", "status": "scanned",
                                               "regions": [{"account_id": "111111111111", "region": "us-east-1",
                                                            "status": "scanned", "logging": {"enabled": False}}]}]}))
    return facts


OLD_SET = {"findings.json": "old findings\n", "report.html": "old report\n", "findings.sarif": "old sarif\n"}


@pytest.mark.parametrize("failing", ["findings.json", "report.html", "findings.sarif"])
def test_a_full_disk_keeps_the_previous_set_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], failing: str) -> None:
    """Regression: on a full disk the old findings.json was replaced while report.html failed and findings.sarif
    was never written (a mixed set). Now nothing is replaced, what could be written is kept in a folder the
    one-line error names, and the exit code is 4."""
    from audit_bedrock.cli import main
    from audit_bedrock.constants import EXIT_WRITE_FAILED

    out = tmp_path / "out"
    out.mkdir()
    for name, text in OLD_SET.items():
        (out / name).write_text(text)
    real = output.write_atomic

    def full(path: Path, data: bytes, private: bool = False) -> None:
        if Path(path).name == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data, private)

    monkeypatch.setattr(output, "write_atomic", full)
    rc = main(["--from-facts", str(_facts_file(tmp_path)), "--output-dir", str(out), "-q", "-q"])
    err = capsys.readouterr().err
    assert rc == EXIT_WRITE_FAILED, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "no report was replaced" in lines[0], err
    assert {name: (out / name).read_text() for name in OLD_SET} == OLD_SET  # the previous set, untouched
    kept = [p for p in out.iterdir() if p.is_dir()]
    assert len(kept) == 1 and kept[0].name.startswith("unfinished-") and str(kept[0]) in lines[0]
    assert sorted(p.name for p in kept[0].iterdir()) == sorted(set(OLD_SET) - {failing})
    assert sorted(p.name for p in out.iterdir()) == sorted([*OLD_SET, kept[0].name])  # no lock file left


def test_a_second_run_into_the_same_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: two concurrent runs into one folder left a mixed set. While one holds the folder's lock,
    another is refused before it scans, exit 2, naming the folder and the lock file."""
    from audit_bedrock.cli import main
    from audit_bedrock.constants import EXIT_USAGE

    out = tmp_path / "out"
    holder = output.OutputLock(out, "--output-dir")  # the first run, still scanning
    try:
        rc = main(["--from-facts", str(_facts_file(tmp_path)), "--output-dir", str(out), "-q", "-q"])
        err = capsys.readouterr().err
        assert rc == EXIT_USAGE, err
        assert f"--output-dir {out}: another audit-bedrock run is writing there" in err
        assert str(out / output.LOCK_NAME) in err
        assert sorted(p.name for p in out.iterdir()) == [output.LOCK_NAME]  # nothing written by the second run
    finally:
        holder.release()
    assert not out.exists()  # the first run wrote nothing either: its lock and the folder it made are gone
    rc = main(["--from-facts", str(_facts_file(tmp_path)), "--output-dir", str(out), "-q", "-q"])
    assert rc == 1 and (out / "findings.json").is_file()  # once released, the folder is free


def test_the_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    """fcntl locks are per process: a second process cannot take the folder while this one holds it."""
    import subprocess
    import sys

    out = tmp_path / "out"
    holder = output.OutputLock(out, "--output-dir")
    try:
        probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                                "from audit_bedrock.output import OutputLock; OutputLock(Path(sys.argv[1]), 'x')",
                                str(out)], capture_output=True, text=True, timeout=60, check=False)
    finally:
        holder.release()
    assert probe.returncode != 0 and "another audit-bedrock run is writing there" in probe.stderr



def test_the_lock_holder_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    """Regression: a run killed while writing (SIGKILL) left its staging folder for good. The next holder of the
    folder's lock removes it; a staging folder touched recently (a lock-free write_reports caller) is kept, and so
    are the reports and an unfinished-TIME folder, which the user is told about."""
    import time

    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / f"{output.STAGING_PREFIX}dead", out / f"{output.STAGING_PREFIX}live"
    for d in (stale, fresh, out / f"{output.KEPT_PREFIX}20261130T000000Z"):
        d.mkdir()
        (d / "findings.json").write_text("{}")
    old = time.time() - output.STALE_STAGING_SECONDS - 5
    os.utime(stale, (old, old))
    (out / "findings.json").write_text("{}")
    lock = output.OutputLock(out, "--output-dir")
    try:
        assert lock.removed == [stale]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [output.LOCK_NAME, fresh.name, f"{output.KEPT_PREFIX}20261130T000000Z", "findings.json"])
    finally:
        lock.release()
