"""The core API's boundaries: who imports the CLI, what --help and --list-rules import, option defaults and checks."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import audit_bedrock
from audit_bedrock import api, cli, constants
from audit_bedrock.errors import UsageError

PACKAGE = Path(audit_bedrock.__file__).resolve().parent
HEAVY = ("boto3", "botocore", "jinja2", "moto")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module `source` imports, as absolute names (a from-import also yields 'module.name'); relative
    imports are resolved against `package`, the package the source file sits in."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules_importing(target: str) -> list[str]:
    """The package's source files (relative paths) that import `target`."""
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        package = ".".join(["audit_bedrock", *path.parent.relative_to(PACKAGE).parts])
        if target in imported_modules(path.read_text(encoding="utf-8"), package):
            hits.append(str(path.relative_to(PACKAGE)))
    return hits


def test_only_main_imports_the_cli() -> None:
    assert modules_importing("audit_bedrock.cli") == ["__main__.py"]


@pytest.mark.parametrize(("source", "package", "expected"), [
    pytest.param("import audit_bedrock.cli\n", "audit_bedrock", True, id="import"),
    pytest.param("from audit_bedrock.cli import main\n", "audit_bedrock", True, id="from-module"),
    pytest.param("from audit_bedrock import cli\n", "audit_bedrock", True, id="from-package"),
    pytest.param("def f():\n    from .cli import main\n", "audit_bedrock", True, id="relative-in-function"),
    pytest.param("from .. import cli\n", "audit_bedrock.reports", True, id="relative-from-subpackage"),
    pytest.param("from audit_bedrock import api\n", "audit_bedrock", False, id="other-module"),
    pytest.param("from audit_bedrock.client import x\n", "audit_bedrock", False, id="similar-name"),
])
def test_the_import_walker_sees_every_spelling(source: str, package: str, expected: bool) -> None:
    assert ("audit_bedrock.cli" in imported_modules(source, package)) is expected


LIGHT_PROBE = """
import sys, json
from audit_bedrock.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "modules": sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})}}))
"""


@pytest.mark.parametrize("argv", [pytest.param(["--help"], id="help"), pytest.param(["--list-rules"], id="list-rules"),
                                  pytest.param(["--explain", "BIL-001"], id="explain")])
def test_help_and_catalog_import_no_sdk_or_templates(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", LIGHT_PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True,
                          text=True, check=True, timeout=60)
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report == {"code": 0, "modules": []}


def test_exit_codes_are_the_constants() -> None:
    c = constants
    assert (cli.EXIT_OK, cli.EXIT_FINDINGS, cli.EXIT_USAGE, cli.EXIT_INCOMPLETE, cli.EXIT_INTERRUPTED) \
        == (c.EXIT_OK, c.EXIT_FINDINGS, c.EXIT_USAGE, c.EXIT_INCOMPLETE, c.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)


@pytest.mark.parametrize("cls", [api.RunOptions, api.ScopeOptions, api.ScanOptions, api.OutputOptions])
def test_every_option_has_a_default_and_options_are_frozen(cls: type) -> None:
    for f in dataclasses.fields(cls):
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
    options = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.__setattr__(dataclasses.fields(cls)[0].name, None)


@pytest.mark.parametrize(("options", "message"), [
    pytest.param(dict(merge=("a.json",), scope=api.ScopeOptions(org=True)), "cannot be combined with --org",
                 id="merge-org"),
    pytest.param(dict(merge=("a.json",), scope=api.ScopeOptions(accounts=("111111111111",), ous=("r-1",))),
                 "cannot be combined with --accounts, --ou", id="merge-accounts-ou"),
    pytest.param(dict(merge=("a.json",), from_facts="f.json"), "cannot be combined with --from-facts",
                 id="merge-from-facts"),
    pytest.param(dict(merge=("a.json",), output=api.OutputOptions(save_facts="f.json")),
                 "cannot be combined with --save-facts", id="merge-save-facts"),
    pytest.param(dict(from_facts="f.json", scope=api.ScopeOptions(shard=(1, 2))), "--shard applies to a scan",
                 id="shard-from-facts"),
    pytest.param(dict(from_facts="f.json", output=api.OutputOptions(save_facts="g.json")),
                 "--save-facts and --from-facts cannot be combined", id="save-and-from-facts"),
])
def test_conflicting_options_are_usage_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        api.RunOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("all", "all", id="all"),
    pytest.param(" all ", "all", id="all-padded"),
    pytest.param("us-east-1, eu-west-1,", ("us-east-1", "eu-west-1"), id="list"),
])
def test_parse_regions(value: str, expected: object) -> None:
    assert api.parse_regions(value) == expected


def test_the_cli_builds_the_options_the_flags_say() -> None:
    ns = cli.build_parser().parse_args(["--accounts", "111111111111", "--regions", "us-east-1", "--shard", "2/3",
                                        "--format", "json,sarif", "--fail-on", "none", "--rules-dir", "x",
                                        "--baseline", "b.json", "--fail-on-new", "-q"])
    options = cli.run_options(ns)
    assert options == api.RunOptions(
        scope=api.ScopeOptions(accounts=("111111111111",), regions=("us-east-1",), shard=(2, 3)),
        scan=api.ScanOptions(rules_dirs=("x",), fail_on="none"),
        output=api.OutputOptions(formats=("json", "sarif"), baseline="b.json", fail_on_new=True, progress=False,
                                 brief=True))
