"""The wheel is self-contained: rules, templates and schema ship inside it, and it runs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_wheel_ships_its_data_and_runs_elsewhere(tmp_path: Path) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("audit_bedrock-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "audit_bedrock/rules/BIL-001.yaml" in names
    assert "audit_bedrock/reports/findings.schema.json" in names
    assert "audit_bedrock/cli.py" in names and "audit_bedrock/py.typed" in names
    assert not any(n.startswith(("tests/", "scanner/", "reports/", "rules/")) for n in names)
    site = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                           str(wheel)], capture_output=True, text=True, check=False)
    assert inst.returncode == 0, inst.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    run = subprocess.run([sys.executable, "-I", "-c",
                          f"import sys; sys.path.insert(0, {str(site)!r}); "
                          "import audit_bedrock, audit_bedrock.cli as c; "
                          f"assert audit_bedrock.__file__.startswith({str(site)!r}), audit_bedrock.__file__; "
                          "raise SystemExit(c.main(['--list-rules']))"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "BIL-001" in run.stdout and "SCAN-003" in run.stdout
