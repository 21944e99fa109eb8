"""The aws/ layer: its botocore savings, the one switch that turns them off, their fallback, and its import boundary."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
import threading
import tomllib
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from moto import mock_aws

from audit_bedrock import collectors
from audit_bedrock.aws import tuning
from audit_bedrock.aws.clients import Sessions
from tests.conftest import ROOT, cli_env

# Clients are built, never called: no connection is made to this endpoint.
NOWHERE = "https://127.0.0.1:9"


def _ssl_context(client: Any) -> Any:
    return client._endpoint.http_session._manager.connection_pool_kw["ssl_context"]


def _declared(service: str) -> set[str]:
    return {a.split(":", 1)[1] for a in collectors.required_actions() if a.startswith(service + ":")}


def test_scanner_clients_share_models_classes_and_ssl_context() -> None:
    """Every thread shares one client per (service, region) (issue 16: memory independent of workers), and
    clients share one SSLContext (its CA bundle is ~0.7 MB), one service model and one class; a botocore
    client made outside Sessions keeps its own."""
    sessions = Sessions(endpoint_url=NOWHERE)
    creds = sessions.caller_credentials()
    made: list[Any] = []

    def build() -> None:
        made.extend([sessions.client("s3", "us-east-1", creds, "a"), sessions.client("s3", "eu-west-1", creds, "a"),
                     sessions.client("iam", "us-east-1", creds, "a")])

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 9 and len({id(c) for c in made}) == 3  # one client per (service, region), any thread
    assert len({id(_ssl_context(c)) for c in made}) == 1
    s3 = [c for c in made if c.meta.service_model.service_name == "s3"]
    assert len({type(c) for c in s3}) == 1 and len({id(c.meta.service_model) for c in s3}) == 1
    outsider = botocore.session.Session().create_client("s3", region_name="us-east-1", aws_access_key_id="a",
                                                        aws_secret_access_key="b")
    assert _ssl_context(outsider) is not _ssl_context(made[0])
    assert type(outsider) is not type(s3[0])


def test_trimmed_models_keep_exactly_the_declared_operations() -> None:
    """EC2's 830-operation model is cut to the operations the collectors declare (DescribeRegions), with every
    shape those operations reach; clients made outside Sessions keep the full model."""
    sessions = Sessions(endpoint_url=NOWHERE, declared_actions=collectors.required_actions())
    for service in tuning.TRIMMED_SERVICES:
        declared = _declared(service)
        model = sessions.client(service, "us-east-1", sessions.caller_credentials(), "a").meta.service_model
        assert declared and set(model.operation_names) == declared
        for op in declared:  # every shape resolves: input, output and nested members
            out = model.operation_model(op).output_shape
            assert out is None or out.members is not None
    ec2 = sessions.client("ec2", "us-east-1", sessions.caller_credentials(), "a")
    # botocore data/ec2/2016-11-15/service-2.json: DescribeRegionsResult.Regions is a RegionList of Region
    regions = ec2.meta.service_model.operation_model("DescribeRegions").output_shape.members["Regions"]
    assert "OptInStatus" in regions.member.members  # what discovery reads
    full = botocore.session.Session().create_client("ec2", region_name="us-east-1", aws_access_key_id="a",
                                                    aws_secret_access_key="b")
    assert len(full.meta.service_model.operation_names) > 100


def test_an_undeclared_operation_does_not_exist_on_the_trimmed_client() -> None:
    """The rule stated in collectors/__init__.py: DescribeInstances (an EC2 operation in botocore's
    ec2/2016-11-15 model) is no method of a client trimmed to DescribeRegions, and is one of a plain client."""
    declared = ["ec2:DescribeRegions"]
    trimmed = Sessions(endpoint_url=NOWHERE, declared_actions=declared)
    ec2 = trimmed.client("ec2", "us-east-1", trimmed.caller_credentials(), "a")
    assert callable(ec2.describe_regions)
    with pytest.raises(AttributeError):
        _ = ec2.describe_instances
    plain = Sessions(endpoint_url=NOWHERE, declared_actions=declared, tuned=False)
    assert callable(plain.client("ec2", "us-east-1", plain.caller_credentials(), "a").describe_instances)


@pytest.mark.parametrize(("actions", "expected"), [
    pytest.param(["ec2:DescribeRegions", "s3:GetBucketPolicy"], {"ec2": {"DescribeRegions"}}, id="ec2-kept"),
    pytest.param(["ec2:DescribeRegions", "ec2:DescribeRegions"], {"ec2": {"DescribeRegions"}}, id="repeats"),
    pytest.param(["s3:ListBuckets", "logs:DescribeLogGroups"], {}, id="no-ec2-no-trim"),
    pytest.param([], {}, id="nothing-declared"),
])
def test_trims_come_from_the_declared_actions(actions: list[str], expected: dict[str, set[str]]) -> None:
    assert {s: set(ops) for s, ops in tuning.trims(actions).items()} == expected


@pytest.mark.parametrize(("tuned", "env", "expected"), [
    pytest.param(None, None, True, id="default-tuned"),
    pytest.param(None, "1", False, id="env-1-plain"),
    pytest.param(None, "true", False, id="env-true-plain"),
    pytest.param(None, "0", True, id="env-0-tuned"),
    pytest.param(False, None, False, id="argument-plain"),
    pytest.param(True, "1", True, id="argument-beats-env"),
])
def test_one_switch_turns_every_saving_off(monkeypatch: pytest.MonkeyPatch, tuned: bool | None, env: str | None,
                                          expected: bool) -> None:
    """Sessions(tuned=False) or AUDIT_BEDROCK_PLAIN_CLIENTS=1: no shared model, class or SSLContext, no trimmed
    model, and the loader is not registered with the (process-wide) patches."""
    if env is None:
        monkeypatch.delenv(tuning.PLAIN_ENV, raising=False)
    else:
        monkeypatch.setenv(tuning.PLAIN_ENV, env)
    sessions = Sessions(endpoint_url=NOWHERE, declared_actions=collectors.required_actions(), tuned=tuned)
    creds = sessions.caller_credentials()
    a, b = sessions.client("s3", "us-east-1", creds, "a"), sessions.client("s3", "eu-west-1", creds, "a")
    ec2 = sessions.client("ec2", "us-east-1", creds, "a")
    assert sessions.tuned is expected
    assert (a.meta.service_model is b.meta.service_model) is expected
    assert (type(a) is type(b)) is expected
    assert (_ssl_context(a) is _ssl_context(b)) is expected
    assert (set(ec2.meta.service_model.operation_names) == _declared("ec2")) is expected
    assert (sessions._loader in tuning._ours) is expected
    sessions.close()
    assert (sessions._loader in tuning._ours) is expected  # close() re-tunes a new loader only when tuned


def test_scanner_works_when_botocore_internals_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    """The savings lean on botocore internals; if those move, the clients stay plain and the scan still works."""
    def moved(*_: Any) -> None:
        raise AttributeError("type object 'ClientCreator' has no attribute '_load_service_model'")

    monkeypatch.setattr(tuning, "_share_models", moved)
    with mock_aws():
        sessions = Sessions()
        client = sessions.client("bedrock", "us-east-1", sessions.caller_credentials(), "123456789012")
        assert client.get_model_invocation_logging_configuration().get("loggingConfig") in (None, {})
        assert sessions.calls.calls == 1


PATCH_PROBE = textwrap.dedent("""
    import json, sys
    import botocore.client, botocore.httpsession
    from audit_bedrock.aws import tuning
    from audit_bedrock.cli import main

    mallopt, installs, install = [], [], tuning.install
    tuning._limit_malloc_arenas = lambda *a: mallopt.append(a)

    def recording(loader, declared_actions):
        declared_actions = list(declared_actions)
        installs.append({s: sorted(ops) for s, ops in tuning.trims(declared_actions).items()})
        install(loader, declared_actions)

    tuning.install = recording
    rc = main(sys.argv[2:])
    creator, ssl = botocore.client.ClientCreator, botocore.httpsession.URLLib3Session
    with open(sys.argv[1], "w") as fh:
        json.dump({
            "rc": rc,
            "patched": [getattr(f, "_audit_bedrock", False) for f in
                        (creator._load_service_model, creator._create_client_class, ssl._get_ssl_context)],
            "mallopt": len(mallopt),
            "trims": installs,
        }, fh)
""")


@pytest.mark.slow
def test_plain_clients_scan_alike_and_install_no_patch(moto_server: str, tmp_path: Path) -> None:
    """A whole CLI scan in a fresh process: with AUDIT_BEDROCK_PLAIN_CLIENTS=1 no botocore patch is installed,
    mallopt is not called and nothing is trimmed, and the findings equal the tuned scan's."""
    script = tmp_path / "probe.py"
    script.write_text(PATCH_PROBE)
    modes = [  # name, environment, patches installed, whether mallopt ran, the trims our loaders got
        ("plain", {tuning.PLAIN_ENV: "1"}, [False, False, False], False, set()),
        ("tuned", {}, [True, True, True], True, {json.dumps({"ec2": sorted(_declared("ec2"))})}),
    ]
    findings: dict[str, Any] = {}
    for name, env, patched, mallopt, trims in modes:
        out, probe = tmp_path / name, tmp_path / f"{name}.json"
        proc = subprocess.run([sys.executable, str(script), str(probe), "--regions", "us-east-1", "--format", "json",
                               "--output-dir", str(out), "-q"], env=cli_env(moto_server, **env),
                              capture_output=True, text=True, timeout=240, check=False)
        assert proc.returncode in (0, 1, 3), proc.stderr[-3000:]
        state = json.loads(probe.read_text())
        assert state["patched"] == patched, name
        assert (state["mallopt"] > 0) is mallopt, name
        assert {json.dumps(t) for t in state["trims"]} == trims, name
        doc = json.loads((out / "findings.json").read_text())
        findings[name] = (state["rc"], doc["scan"]["api_calls"], [(f["id"], f["rule_id"]) for f in doc["findings"]])
    assert findings["plain"] == findings["tuned"] and findings["plain"][2]


def _package_modules() -> dict[str, Path]:
    """Every module of the installed package, named as imported, from pyproject's package-dir mapping."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in package_dir.items():
        for path in (ROOT / folder).glob("*.py"):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def _import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (function-level imports too); importing
    a.b.c runs a and a.b first, so those count as well."""
    modules = _package_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, f"{path}:{node.lineno}: the package imports absolutely"
                named.add(node.module)
                named.update(f"{node.module}.{a.name}" for a in node.names)  # `from package import submodule`
        targets = set()
        for imported in named:
            parts = imported.split(".")
            targets.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if p in modules)
        graph[name] = targets - {name}
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize(("source", "target", "reaches"), [
    pytest.param("audit_bedrock.aws", "audit_bedrock.collectors", False, id="aws-never-imports-collectors"),
    pytest.param("audit_bedrock.aws", "audit_bedrock.scan", False, id="aws-never-imports-the-scan"),
    pytest.param("audit_bedrock.collectors", "audit_bedrock.aws", True, id="collectors-do-import-aws"),
    pytest.param("audit_bedrock.scan", "audit_bedrock.aws.clients", True, id="the-scan-builds-on-clients"),
])
def test_import_direction(source: str, target: str, reaches: bool) -> None:
    """No import cycle between the aws layer and the collectors: collectors import aws, never the reverse (the
    declared actions are passed in). The last two cases show the walk sees the imports that do exist."""
    graph = _import_graph()
    sources = [m for m in graph if _within(m, source)]
    assert sources, source
    hits = {m: sorted(t for t in _reach(graph, m) if _within(t, target)) for m in sources}
    assert any(hits.values()) is reaches, hits


def test_aws_layer_imports_only_itself_and_the_error_types() -> None:
    graph = _import_graph()
    outside = {m: sorted(t for t in _reach(graph, m) if not _within(t, "audit_bedrock.aws"))
               for m in graph if _within(m, "audit_bedrock.aws")}
    assert set(outside) >= {"audit_bedrock.aws.clients", "audit_bedrock.aws.tuning", "audit_bedrock.aws.redact",
                            "audit_bedrock.aws.errors"}
    assert all(set(v) <= {"audit_bedrock", "audit_bedrock.errors"} for v in outside.values()), outside
