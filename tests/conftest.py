"""Shared fixtures: a clean fake-AWS environment, moto servers on loopback, and CLI runners."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def moto_server() -> Iterator[str]:
    """An in-process moto server on a free 127.0.0.1 port, stopped when the test ends."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A moto server in its own process on a free 127.0.0.1 port, stopped on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=cli_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def moto_subprocess() -> Iterator[str]:
    """A moto server in its own process, stopped when the test ends."""
    with moto_process() as url:
        yield url


def seed_demo(endpoint: str) -> dict[str, str]:
    """Seed the demo organization into the server at `endpoint`; account name -> id."""
    from audit_bedrock.demo import seed

    return seed(endpoint)


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
