"""reports/ installs as audit_bedrock.reports: pluggable renderers, each turning a ScanResult into one file's bytes.

Its data ships in the wheel: findings.schema.json here, and the HTML report's templates in reports/templates/
(the data-only package audit_bedrock.reports.templates).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audit_bedrock.model import ScanResult

if TYPE_CHECKING:
    from audit_bedrock.reports.fixplan import FixPlan
    from audit_bedrock.reports.history import RunPoint

Renderer = Callable[[ScanResult, "RenderContext"], bytes]


@dataclass(frozen=True)
class RenderContext:
    """What renderers may read besides the result: the rule catalog, the tool version, and what the run adds.

    `fix_plan` is built while the scan runs (each account's facts are read once, as they arrive, and then let go:
    only the steps are kept), so renderers never need the facts themselves. `history` holds one small summary per
    previous run (never their findings).
    """

    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: str = "0.0.0"
    baseline: str | None = None  # the --baseline file the findings were compared with, if any
    home_region: str = "us-east-1"  # where account-wide findings are imported into Security Hub
    scope: str = ""  # the scanned subset ("" for a whole organization or one account): SARIF's category
    fix_plan: FixPlan | None = None
    history: tuple[RunPoint, ...] = ()


# format name -> (file name, "module:function"); modules are imported only when used.
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("findings.json", "audit_bedrock.reports.json_report:render"),
    "html": ("report.html", "audit_bedrock.reports.html:render"),
    "sarif": ("findings.sarif", "audit_bedrock.reports.sarif:render"),
    "markdown": ("summary.md", "audit_bedrock.reports.markdown:render"),  # a CI job summary
    "ocsf": ("findings.ocsf.json", "audit_bedrock.reports.ocsf:render"),
    "asff": ("findings.asff.json", "audit_bedrock.reports.asff:render"),
    "fix": ("fix-plan.json", "audit_bedrock.reports.fixplan:render"),
}
# Formats that write more than one file: the further (file name, "module:function") pairs.
COMPANIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "fix": (("fix-plan.sh", "audit_bedrock.reports.fixplan:render_shell"),),
}


def _load(spec: str) -> Renderer:
    module, func = spec.split(":")
    fn: Renderer = getattr(importlib.import_module(module), func)
    return fn


def renderer(fmt: str) -> Renderer:
    """Import and return the renderer for `fmt` (its first file)."""
    return _load(FORMATS[fmt][1])


def outputs(fmt: str) -> list[tuple[str, Renderer]]:
    """Every (file name, renderer) that format `fmt` writes, in order."""
    return [(name, _load(spec)) for name, spec in (FORMATS[fmt], *COMPANIONS.get(fmt, ()))]
