"""Exceptions that end a run with a clear message and a contract exit code."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input (flags, config, rules, facts, baseline): exit 2, nothing scanned."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
