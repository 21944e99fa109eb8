"""Constants every layer shares: severities and their ranks, id formats, and Bedrock's logging data types."""

from __future__ import annotations

import re
from typing import Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
# Most severe first; a finding's rank is its index (0 is critical).
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
# --fail-on and the config's fail_on: a severity (and everything above it), or never.
FAIL_ON_LEVELS: tuple[str, ...] = ("critical", "high", "medium", "low", "none")

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*-\d{3}$")

# Bedrock's loggingConfig delivers each data type only when its flag is true (API LoggingConfig).
DATA_TYPE_FLAGS: dict[str, str] = {
    "text": "textDataDeliveryEnabled",
    "image": "imageDataDeliveryEnabled",
    "embedding": "embeddingDataDeliveryEnabled",
    "video": "videoDataDeliveryEnabled",
    "audio": "audioDataDeliveryEnabled",
}
DATA_TYPES: tuple[str, ...] = tuple(DATA_TYPE_FLAGS)

# Exit codes (README "Exit codes") and run defaults, shared by the CLI and the core API.
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_WRITE_FAILED = 4  # the scan finished, but a report could not be written (none was replaced)
EXIT_INTERNAL = 5  # an unexpected error (a bug): one line, the traceback with -v
# The argparse epilog and the README "Exit codes" table say the same.
EXIT_CODES_TEXT = ("Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or config error (nothing scanned), "
                   "3 scan incomplete or --timeout reached (with --fail-on-incomplete: also when there are "
                   "findings), 4 a report could not be written (none was replaced), 5 internal error, "
                   "130 interrupted.")
DEFAULT_FORMATS: tuple[str, ...] = ("json", "html", "sarif")
DEFAULT_OUTPUT_DIR = "audit-bedrock-report"

# The role that imports a member account's findings into Security Hub (deploy/audit-role.yaml, when asked).
DEFAULT_IMPORT_ROLE = "AuditBedrockSecurityHubImport"
