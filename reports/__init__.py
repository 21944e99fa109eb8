"""reports/ installs as audit_bedrock.reports: pluggable renderers, each turning a ScanResult into one file's bytes.

Its data ships in the wheel: findings.schema.json here, and the HTML report's templates in reports/templates/
(the data-only package audit_bedrock.reports.templates).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audit_bedrock.model import ScanResult

Renderer = Callable[[ScanResult, "RenderContext"], bytes]


@dataclass(frozen=True)
class RenderContext:
    """What renderers may read besides the result: the rule catalog and the tool version."""

    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: str = "0.0.0"
    baseline: str | None = None  # the --baseline file the findings were compared with, if any


# format name -> (file name, "module:function"); modules are imported only when used.
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("findings.json", "audit_bedrock.reports.json_report:render"),
    "html": ("report.html", "audit_bedrock.reports.html:render"),
    "sarif": ("findings.sarif", "audit_bedrock.reports.sarif:render"),
}


def renderer(fmt: str) -> Renderer:
    """Import and return the renderer for `fmt`."""
    module, func = FORMATS[fmt][1].split(":")
    fn: Renderer = getattr(importlib.import_module(module), func)
    return fn
