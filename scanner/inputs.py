"""Input files (--baseline, --merge, --from-facts) read and checked against the project's JSON Schemas before use.

These files are the only foreign data a run takes besides AWS's answers: everything a report says about them
comes from a document that passed reports/findings.schema.json (a findings.json) or scanner/facts.schema.json
(a facts file), so no report built from them can fail the findings schema. A refusal is a UsageError (exit 2)
naming the file and the JSON path of the first problem, e.g. `findings[3].message`.
"""

from __future__ import annotations

import functools
import json
import os
from itertools import islice
from typing import TYPE_CHECKING, Any

from audit_bedrock.errors import UsageError, printable

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

# An input file larger than this is refused before it is read: json.loads needs several times its size in memory.
# A 1,000-account organization's findings.json is tens of MB, its --save-facts file a few hundred.
MAX_INPUT_BYTES = 1 << 30
FINDINGS_SCHEMA = "reports/findings.schema.json"
FACTS_SCHEMA = "scanner/facts.schema.json"
_ERRORS_CONSIDERED = 20  # the most relevant of the first errors is reported; a broken huge file has millions


def read_json(path: str, what: str) -> Any:
    """The JSON value in `path`; unreadable, oversized, non-UTF-8, non-JSON or absurdly nested is a UsageError.

    `what` names the file in messages ("baseline file", "merge input", "facts file")."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size  # a regular file's size; 0 for a pipe (<(...)): the read bounds it
            data = b"" if size > MAX_INPUT_BYTES else fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc.strerror or exc}", source=path) from None
    if size > MAX_INPUT_BYTES or len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{what} is larger than {MAX_INPUT_BYTES >> 20} MiB, the limit for an input file "
                         f"({max(size, len(data)) >> 20} MiB)", source=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {what}: not UTF-8 text ({exc.reason})", source=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"corrupt {what} (line {exc.lineno}): {exc.msg}", source=path) from None
    except RecursionError:
        raise UsageError(f"corrupt {what}: JSON nested too deeply", source=path) from None


def json_path(parts: Any) -> str:
    """`findings[3].message` for the path ['findings', 3, 'message']; `(top level)` for []."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return printable(out) or "(top level)"


@functools.cache
def _validator(name: str) -> Validator:
    import jsonschema

    if name == FINDINGS_SCHEMA:
        from audit_bedrock.reports.json_report import schema
        doc = schema()
    else:
        from audit_bedrock.vocabulary import schema as facts_schema
        doc = facts_schema()
    cls = jsonschema.validators.validator_for(doc)
    cls.check_schema(doc)
    return cls(doc)  # type: ignore[no-any-return]


def schema_problem(doc: Any, name: str) -> str:
    """'' when `doc` satisfies the schema `name` (FINDINGS_SCHEMA or FACTS_SCHEMA), else 'PATH: what is wrong'."""
    from jsonschema.exceptions import best_match

    error = best_match(islice(_validator(name).iter_errors(doc), _ERRORS_CONSIDERED))
    if error is None:
        return ""
    where = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):  # name the missing key in the path
        where.append(next(str(k) for k in error.validator_value if k not in error.instance))
        message = "missing (a required key)"
    else:
        message = printable(error.message)
        if len(message) > 200:
            message = message[:200] + "..."
    return f"{json_path(where)}: {message}"


def checked(doc: Any, name: str, path: str, problem_prefix: str) -> Any:
    """`doc`, after the schema `name` accepted it; else a UsageError '{path}: {prefix}: PATH: ... (SCHEMA)'."""
    problem = schema_problem(doc, name)
    if problem:
        raise UsageError(f"{problem_prefix}: {problem} (see {name})", source=path)
    return doc

