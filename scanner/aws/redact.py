"""Secret redaction: credential values the scan has seen never reach a log record."""

from __future__ import annotations

import logging
import re
import threading

from audit_bedrock.errors import printable

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
# Credential-shaped text in botocore's debug output: request headers and the AssumeRole answer.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"&,}\s]+)"),
    re.compile(r"(<(SecretAccessKey|SessionToken)>)([^<]*)(?=</\2>)"),
    re.compile(r"(?i)(['\"](?:SecretAccessKey|SessionToken|secret_key|token|aws_secret_access_key|"
               r"aws_session_token)['\"]\s*:\s*b?['\"])([^'\"]+)"),
    # a signed request as -vvv logs it: the SigV4 signature (replayable within its window) and the ExternalId
    re.compile(r"(Signature=)([0-9a-fA-F]+)"),
    re.compile(r"(?i)(X-Amz-Signature=)([0-9a-fA-F]+)"),
    re.compile(r"(?i)(['\"]?ExternalId['\"]?\s*[:=]\s*b?['\"]?)([^'\"&,}\s]+)"),
)
REDACTED = "<redacted>"


def register_secret(*values: str | None) -> None:
    """Remember credential values so that no log record can show them."""
    with _SECRETS_LOCK:
        _SECRETS.update(v for v in values if v and len(v) >= 8)


def redact(text: str) -> str:
    """`text` with every registered secret and every credential-shaped field replaced."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """A handler filter that redacts credentials from every record (botocore's debug logging included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: the handler reports it as usual
        clean = printable(redact(message))  # one record, one line: no terminal escapes from AWS values
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True
