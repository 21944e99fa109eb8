"""The shipped GitHub Actions workflow: valid against the workflow schema, and gating on the documented exit codes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "github-actions"
WORKFLOWS = sorted(EXAMPLES.glob("*.yml"))
WORKFLOW = EXAMPLES / "audit-bedrock.yml"


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans (YAML 1.2, as GitHub reads it): `on:` stays a string."""


_Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load(path.read_text(), Loader=_Yaml12Loader)
    return doc


def steps() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load(WORKFLOW)["jobs"]["scan"]["steps"]
    return result


def step(uses_or_name: str) -> dict[str, Any]:
    for s in steps():
        if s.get("uses", "").startswith(uses_or_name) or s.get("name") == uses_or_name:
            return s
    raise AssertionError(f"no step {uses_or_name}")


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    return subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_schema(workflow: Path) -> None:
    proc = check_jsonschema(workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mutation", [
    pytest.param(lambda d: d.pop("jobs"), id="no-jobs"),
    pytest.param(lambda d: d["permissions"].update({"id-token": "admin"}), id="bad-permission"),
    pytest.param(lambda d: d["jobs"]["scan"].pop("runs-on"), id="no-runs-on"),
])
def test_schema_check_rejects_a_broken_workflow(tmp_path: Path, mutation: Any) -> None:
    doc = load(WORKFLOW)
    mutation(doc)
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert check_jsonschema(broken).returncode != 0


def test_triggers_and_permissions() -> None:
    doc = load(WORKFLOW)
    assert set(doc["on"]) == {"schedule", "workflow_dispatch"}
    assert doc["on"]["schedule"][0]["cron"]
    assert doc["permissions"] == {"id-token": "write", "security-events": "write", "contents": "read"}


def test_oidc_credentials_and_install() -> None:
    creds = step("aws-actions/configure-aws-credentials@")["with"]
    assert "role-to-assume" in creds and "aws-access-key-id" not in creds
    assert any("pip install" in s.get("run", "") and "audit-bedrock" in s["run"] for s in steps())
    # pinned to the released version: the job holds organization-wide read credentials
    install = next(s["run"] for s in steps() if "pip install" in s.get("run", ""))
    from audit_bedrock import __version__

    assert f'"audit-bedrock=={__version__}"' in install, install


def test_markdown_summary_goes_to_the_job_summary() -> None:
    assert "markdown" in step("Scan the organization")["run"]
    summary = step("Job summary")
    assert summary["if"].startswith("always()") and "out/summary.md" in summary["if"]
    assert 'cat out/summary.md >> "$GITHUB_STEP_SUMMARY"' in summary["run"]


def test_scan_captures_the_exit_code() -> None:
    scan = step("Scan the organization")
    assert "audit-bedrock --org" in scan["run"] and "--output-dir out" in scan["run"]
    assert "set +e" in scan["run"] and 'echo "exit-code=$code" >> "$GITHUB_OUTPUT"' in scan["run"]
    # an incomplete scan with findings exits 3, not 1: CI sees the lost coverage (README "Exit codes")
    assert "--fail-on-incomplete" in scan["run"]


@pytest.mark.parametrize(("uses", "path_key", "path"), [
    pytest.param("github/codeql-action/upload-sarif@", "sarif_file", "out/findings.sarif", id="sarif"),
    pytest.param("actions/upload-artifact@", "path", "out/report.html", id="html"),
])
def test_reports_are_uploaded_even_with_findings(uses: str, path_key: str, path: str) -> None:
    s = step(uses)
    assert s["if"].startswith("always()")
    assert path in s["with"][path_key]
    names = [x.get("uses", x.get("name")) for x in steps()]
    assert names.index(s.get("uses")) < names.index("Gate on the exit code")  # uploads come before the gate
    if "upload-sarif" in uses:  # the SARIF's own automationDetails.id is the category; the input would be ignored
        assert "category" not in s["with"]


@pytest.mark.slow
@pytest.mark.parametrize(("code", "expected"), [
    pytest.param("0", 0, id="clean"),
    pytest.param("1", 1, id="findings"),
    pytest.param("2", 2, id="config-error"),
    pytest.param("3", 3, id="incomplete"),
    pytest.param("4", 4, id="write-failed"),
    pytest.param("", 1, id="scan-did-not-run"),
    pytest.param("130", 1, id="interrupted"),
])
def test_gate_step_exits_with_the_documented_codes(code: str, expected: int) -> None:
    gate = step("Gate on the exit code")
    assert gate["if"] == "always()"
    proc = subprocess.run(["bash", "-e", "-c", gate["run"]], env={"CODE": code, "FAIL_ON": "high",
                                                                  "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == expected, proc.stdout
    comments = WORKFLOW.read_text()
    for documented in ("#   1  open findings", "#   2  usage or configuration error", "#   3  the scan is incomplete",
                       "#   4  the scan finished but a report could not be written"):
        assert documented in comments
