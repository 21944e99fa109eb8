"""Exceptions that end a run with a clear message and a contract exit code."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input (flags, config, rules, facts, baseline): exit 2, nothing scanned."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class DeadlineReached(BaseException):  # like KeyboardInterrupt: it passes every `except Exception` on its way
    """The --timeout passed before any account was scanned (discovery hung): nothing to write, exit 3."""


def printable(text: object) -> str:
    """`text` safe for a terminal or a log line: control and format characters (ESC, BEL, CR, LF, bidi
    overrides) are shown as escapes, so an AWS-controlled value cannot retitle or clear the terminal or
    forge a line."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value)
