"""Exit codes and run defaults shared by the CLI and the core API, importable without either's dependencies."""

from __future__ import annotations

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_FORMATS: tuple[str, ...] = ("json", "html", "sarif")
DEFAULT_OUTPUT_DIR = "audit-bedrock-report"
