"""The demo writes every format, each valid for its ecosystem, and --history draws the trend (in Chromium too)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from audit_bedrock.reports.fixplan import Step
from tests.conftest import load_json, run_cli, validate_findings
from tests.e2e.test_html_browser import browser, open_report  # noqa: F401  (fixtures)
from tests.unit.reports.test_fixplan import validate_plan, validate_step
from tests.unit.reports.test_ocsf_asff import validate_import

pytestmark = pytest.mark.slow

ALL_FORMATS = "json,html,sarif,ocsf,asff,fix"


def synthetic_run(doc: dict[str, Any], day: str, extra_high: int, logging_off: int) -> dict[str, Any]:
    """An earlier run made from the demo's findings.json: more open highs, fewer account-regions logging."""
    out = copy.deepcopy(doc)
    out["scan"]["started_at"] = f"{day}T06:00:00Z"
    out["scan"]["finished_at"] = f"{day}T06:02:00Z"
    highs = [f for f in doc["findings"] if f["severity"] == "high" and f["status"] == "open"]
    out["findings"] += [dict(f, id=f"{day.replace('-', '')}{i:024d}") for i, f in enumerate(highs[:extra_high])]
    on = [c for c in out["coverage"] if c["status"] == "scanned" and c["logging_enabled"]]
    for c in on[:logging_off]:
        c["logging_enabled"] = False
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run once for its findings.json, two earlier runs made from it, then the demo with every format."""
    root = tmp_path_factory.mktemp("demo")
    first = run_cli(["--demo", "--format", "json", "--output-dir", str(root / "first"), "-q"], None)
    assert first.returncode in (1, 3), first.stderr
    doc = load_json(root / "first" / "findings.json")
    for run_id, day, extra, off in (("r1", "2026-11-17", 6, 3), ("r2", "2026-11-24", 3, 1)):
        path = root / "history" / "runs" / run_id / "report" / "findings.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(synthetic_run(doc, day, extra, off)))
    proc = run_cli(["--demo", "--format", ALL_FORMATS, "--output-dir", str(root / "out"),
                    "--history", str(root / "history")], None)
    assert proc.returncode in (1, 3), proc.stderr
    (root / "stdout.txt").write_text(proc.stdout)
    return root


def test_demo_writes_every_format_valid(demo: Path) -> None:
    out = demo / "out"
    doc = load_json(out / "findings.json")
    validate_findings(doc)
    ocsf = load_json(out / "findings.ocsf.json")
    assert len(ocsf) == len(doc["findings"])
    for item in ocsf:
        assert DetectionFinding.model_validate(item).class_uid == 2004
    asff = load_json(out / "findings.asff.json")
    for start in range(0, len(asff), 100):
        validate_import(asff[start:start + 100])
    plan = load_json(out / "fix-plan.json")
    validate_plan(plan)
    assert plan["schema_version"] == 1 and plan["steps"] and plan["manual"]
    for s in plan["steps"]:
        validate_step(Step(s["account_id"], s["region"], s["service"], s["operation"], s["parameters"],
                           tuple(s["fixes"]), s["note"]))
    subprocess.run(["bash", "-n", str(out / "fix-plan.sh")], check=True)
    assert "findings.sarif" in {p.name for p in out.iterdir()}


def test_summary_shows_the_change_since_the_last_run(demo: Path) -> None:
    stdout = (demo / "stdout.txt").read_text()
    line = next(x for x in stdout.splitlines() if x.startswith("since last run (2026-11-24)"))
    assert "-3 open" in line and "high -3" in line and "logging on" in line


def test_trend_renders_in_chromium_without_network(demo: Path, open_report: Any) -> None:  # noqa: F811
    page = open_report(demo / "out" / "report.html")
    assert page.requests == [page.url] and page.errors == []
    p = page.page
    assert p.is_visible("#trend")
    runs = p.eval_on_selector_all("#trend-severity rect.bar", "els => [...new Set(els.map(e => e.dataset.run))]")
    assert sorted(runs) == ["0", "1", "2"]
    heights = p.eval_on_selector_all(
        "#trend-severity rect.bar", "els => els.map(e => [e.dataset.run, e.getBoundingClientRect().height])")
    total = {r: sum(h for run, h in heights if run == r) for r in ("0", "1", "2")}
    assert total["0"] > total["1"] > total["2"] > 0  # more highs in the earlier runs: taller bars
    # logging on, and delivering: the catalog has the delivery rule (BIL-022) since issue 14
    assert p.eval_on_selector_all("#trend-coverage polyline", "els => els.map(e => e.getAttribute('class'))") \
        == ["line logging-on", "line delivering"]
    assert p.locator("#trend-table tbody tr").count() == 3
    # each finding with a planned fix shows it next to its remediation
    assert p.locator(".fix pre.fix-step").count() > 0
