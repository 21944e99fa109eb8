"""Packaging: the wheel is self-contained and runs from any directory, and no build prints a setuptools warning."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
# What setuptools' warnings look like in a build's output: "SetuptoolsWarning: ...", "!!" banners, "warning: ...".
WARNING = re.compile(r"(?i)warn|^\s*!!")


def warnings_in(*outputs: str) -> list[str]:
    return [line for out in outputs for line in out.splitlines() if WARNING.search(line)]


def test_every_shipped_folder_is_a_listed_package() -> None:
    """setuptools warns about a folder inside a package that `packages` does not name ("Package would be
    ignored"), a data-only one too (reports/templates/): every folder under the mapping is listed."""
    listed = set(SETUPTOOLS["packages"])
    found: set[str] = set()
    for package, folder in SETUPTOOLS["package-dir"].items():
        for sub in [ROOT / folder, *(ROOT / folder).rglob("*")]:
            if sub.is_dir() and "__pycache__" not in sub.parts and any(f.is_file() for f in sub.iterdir()):
                rel = sub.relative_to(ROOT / folder).parts
                found.add(".".join([package, *rel]))
    assert "audit_bedrock.reports.templates" in found
    assert found <= listed, sorted(found - listed)
    assert all(p in SETUPTOOLS["package-data"] for p in found if p.endswith("templates"))


@pytest.mark.slow
def test_wheel_ships_its_data_and_runs_elsewhere(tmp_path: Path) -> None:
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    assert not warnings_in(build.stdout, build.stderr), build.stderr
    wheel = next((tmp_path / "dist").glob("audit_bedrock-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "audit_bedrock/rules/BIL-001.yaml" in names
    assert "audit_bedrock/reports/findings.schema.json" in names
    assert {f"audit_bedrock/reports/templates/report.{ext}" for ext in ("html", "css", "js")} <= names
    assert "audit_bedrock/aws/tuning.py" in names
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


@pytest.mark.slow
def test_editable_strict_build_prints_no_warning(tmp_path: Path) -> None:
    """What `make demo`/`make test` install: a strict editable wheel, built (in a copy of the project, so this
    checkout's build/ link tree is left alone) with the Makefile's own PYTHONWARNINGS. setuptools announces
    every editable install with an information-only "Editable installation." warning, which the Makefile
    hides; nothing else may be printed."""
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r'^EDITABLE := PYTHONWARNINGS="([^"]+)" ', makefile, re.M)
    assert match, "the Makefile's EDITABLE install command sets PYTHONWARNINGS"
    project = tmp_path / "project"
    for folder in {Path(f).parts[0] for f in SETUPTOOLS["package-dir"].values()}:
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    code = ("import setuptools.build_meta as b; "
            f"print(b.build_editable({str(tmp_path / 'dist')!r}, {{'editable-mode': 'strict'}}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    results = {}
    for name, extra in (("makefile", {"PYTHONWARNINGS": match.group(1)}), ("bare", {})):
        proc = subprocess.run([sys.executable, "-c", code], cwd=project, env={**env, **extra},
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = warnings_in(proc.stdout, proc.stderr)
    assert results["makefile"] == []
    assert results["bare"], "without the filter setuptools' editable notice shows (the check can see warnings)"
