"""Shared fixtures: a clean fake-AWS environment, moto servers on loopback, and CLI runners."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock.standin import estate, server

ROOT = Path(__file__).resolve().parent.parent  # the repository

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
DROP_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_SECURITY_TOKEN", "MOTO_ACCOUNT_ID")


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with throwaway credentials and no endpoint or profile from the developer's shell."""
    for k in DROP_ENV:
        monkeypatch.delenv(k, raising=False)
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(autouse=True)
def moto_lookup_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto has no cloudtrail:LookupEvents (NotImplementedError): answer "no event" in its real shape.

    `{"Events": []}` is LookupEventsResponse with no event (botocore cloudtrail 2013-11-01). Only mock_aws and
    in-process servers see this; a moto subprocess is reached through the stand-in proxy, which answers
    LookupEvents itself. Tests of events found use a Stubber or the proxy.
    """
    try:
        from moto.cloudtrail.responses import CloudTrailResponse
    except ImportError:
        return
    monkeypatch.setattr(CloudTrailResponse, "lookup_events", lambda self: json.dumps({"Events": []}),
                        raising=False)


@pytest.fixture
def moto_server() -> Iterator[str]:
    """An in-process moto server on a free 127.0.0.1 port, stopped when the test ends."""
    with server.threaded() as url:
        yield url


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A moto server in its own process on a free 127.0.0.1 port, stopped on exit."""
    with server.process(env=cli_env(None)) as moto:
        yield moto.url


@pytest.fixture
def moto_subprocess() -> Iterator[str]:
    """A moto server in its own process, stopped when the test ends."""
    with moto_process() as url:
        yield url


def seed_demo(endpoint: str) -> dict[str, str]:
    """Seed the demo organization into the server at `endpoint`; account name -> id."""
    return estate.seed_demo(endpoint)


def cli_env(endpoint: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env.update(FAKE_ENV)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env


def run_cli(args: list[str], endpoint: str | None, cwd: Path | None = None, timeout: float = 240,
            **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m audit_bedrock ARGS` as a separate process against `endpoint`."""
    return subprocess.run([sys.executable, "-m", "audit_bedrock", *args], env=cli_env(endpoint, **extra_env),
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def validate_findings(doc: dict[str, Any]) -> None:
    """Validate a findings.json document against the shipped JSON Schema."""
    import jsonschema

    from audit_bedrock.reports.json_report import schema

    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)


def validate_facts(doc: dict[str, Any]) -> None:
    """Validate a facts document against the shipped facts schema (scanner/facts.schema.json).

    `doc` is a whole --save-facts file (it has "format"), an account document (it has no "region") or a
    region document. Derived facts are optional, so raw and derived documents both validate.
    """
    import jsonschema

    from audit_bedrock.vocabulary import schema

    full = schema()
    kind = "file" if "format" in doc else "region" if "region" in doc else "account"
    target = full if kind == "file" else {"$schema": full["$schema"], "$defs": full["$defs"],
                                          "$ref": f"#/$defs/{kind}"}
    jsonschema.validate(doc, target, cls=jsonschema.Draft202012Validator)
