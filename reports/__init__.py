"""reports/ installs as audit_bedrock.reports: pluggable renderers, each turning a ScanResult into one file's bytes.

A renderer streams: it yields the file in chunks, so that no report is held whole (a 1,000-account
organization's findings.json is tens of megabytes); `renderer` and `outputs` join them for callers that need bytes.

Its data ships in the wheel: findings.schema.json here, and the HTML report's templates in reports/templates/
(the data-only package audit_bedrock.reports.templates).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audit_bedrock.model import ScanResult

if TYPE_CHECKING:
    from audit_bedrock.reports.fixplan import FixPlan
    from audit_bedrock.reports.history import RunPoint

Renderer = Callable[[ScanResult, "RenderContext"], bytes]
Streamer = Callable[[ScanResult, "RenderContext"], Iterable[bytes]]  # the file's bytes, chunk by chunk


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


# format name -> (file name, "module:function" of its Streamer); modules are imported only when used.
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("findings.json", "audit_bedrock.reports.json_report:stream"),
    "html": ("report.html", "audit_bedrock.reports.html:stream"),
    "sarif": ("findings.sarif", "audit_bedrock.reports.sarif:stream"),
    "markdown": ("summary.md", "audit_bedrock.reports.markdown:stream"),  # a CI job summary
    "ocsf": ("findings.ocsf.json", "audit_bedrock.reports.ocsf:stream"),
    "asff": ("findings.asff.json", "audit_bedrock.reports.asff:stream"),
    "fix": ("fix-plan.json", "audit_bedrock.reports.fixplan:stream"),
}
# Formats that write more than one file: the further (file name, "module:function") pairs.
COMPANIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "fix": (("fix-plan.sh", "audit_bedrock.reports.fixplan:stream_shell"),),
}


def _load(spec: str) -> Streamer:
    module, func = spec.split(":")
    fn: Streamer = getattr(importlib.import_module(module), func)
    return fn


def _joined(stream: Streamer) -> Renderer:
    def render(result: ScanResult, ctx: RenderContext) -> bytes:
        return b"".join(stream(result, ctx))
    return render


def streamer(fmt: str) -> Streamer:
    """Import and return the streaming renderer for `fmt` (its first file)."""
    return _load(FORMATS[fmt][1])


def streams(fmt: str) -> list[tuple[str, Streamer]]:
    """Every (file name, streaming renderer) that format `fmt` writes, in order."""
    return [(name, _load(spec)) for name, spec in (FORMATS[fmt], *COMPANIONS.get(fmt, ()))]


def renderer(fmt: str) -> Renderer:
    """Import and return the renderer for `fmt` (its first file): the whole file's bytes."""
    return _joined(streamer(fmt))


def outputs(fmt: str) -> list[tuple[str, Renderer]]:
    """Every (file name, renderer) that format `fmt` writes, in order: each file's whole bytes."""
    return [(name, _joined(stream)) for name, stream in streams(fmt)]
