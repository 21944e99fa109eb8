"""Values as words for the human-facing reports (HTML, Markdown, terminal): plurals, keys, lists, null, flags."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
# Keys whose values are the scanner's own snake_case names (not AWS data): shown as words too.
_NAMED_VALUES = frozenset({"kind", "destination", "destinations"})
NONE = "none"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 finding', '2 findings', '0 accounts'; `many` for an irregular plural."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def key_words(key: str) -> str:
    """A snake_case key as words ('missing_data_types' -> 'missing data types'); other keys unchanged."""
    return key.replace("_", " ") if _SNAKE.match(key) else key


def value_words(value: Any, key: str = "") -> str:
    """A property value as a reader says it: null and empty lists 'none', flags 'yes'/'no', lists joined with
    commas, a {kind, name} pair as 'log group /x', other mappings as 'key: value; ...'."""
    if value is None or value == [] or value == {} or value == "":
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return key_words(value) if key in _NAMED_VALUES else value
    if isinstance(value, Mapping):
        if set(value) == {"kind", "name"}:
            return f"{key_words(str(value['kind']))} {value['name']}"
        return "; ".join(f"{key_words(str(k))}: {value_words(v, str(k))}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(value_words(v, key) for v in value)
    return str(value)
