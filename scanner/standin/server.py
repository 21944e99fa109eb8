"""One moto launcher: an in-process ThreadedMotoServer or a moto subprocess, on a free 127.0.0.1 port, stopped on exit.

Either may index access keys (`key_index=True`): moto resolves the account of every request by scanning
every account's IAM backend, in every partition, for the request's access key
(moto.iam.models.get_account_id_from). With 1,000 accounts that is ~6,000 lookups per request, so moto's CPU
per call doubled between 200 and 1,000 accounts and a benchmark of the scanner's scaling measured moto's
quadratic term instead. The index records keys as moto creates them (AssumeRole's temporary keys, IAM
users' keys) and falls back to moto's own scan for any other key. It changes no response: the same key maps
to the same account.

moto is imported only when a server is launched (it is the `demo` extra). As a program this module is
`python -m moto.server` with the key index installed:

    python -m audit_bedrock.standin.server -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
# Never inherited by a stand-in: it would pin every request to one account, or send it elsewhere.
DROP_ENV = ("MOTO_ACCOUNT_ID", "AWS_ENDPOINT_URL")


def available() -> bool:
    """True when moto (with its server) can be imported."""
    import importlib.util

    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("werkzeug") is not None


def install_key_index() -> None:
    """Make moto's access key -> account lookup O(1) in this process (idempotent)."""
    from moto.iam import models

    if getattr(models.get_account_id_from, "_standin_index", False):
        return
    index: dict[str, str] = {}
    lock = threading.Lock()
    scan = models.get_account_id_from

    def remember(create: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            key = create(self, *args, **kwargs)
            with lock:
                index[key.physical_resource_id] = self.account_id
            return key
        return wrapper

    def get_account_id_from(access_key: str) -> str:
        account = index.get(access_key)
        return account if account is not None else str(scan(access_key))

    get_account_id_from._standin_index = True  # type: ignore[attr-defined]
    for name in ("create_temp_access_key", "create_access_key"):
        setattr(models.IAMBackend, name, remember(getattr(models.IAMBackend, name)))
    models.get_account_id_from = get_account_id_from


@contextlib.contextmanager
def threaded(*, key_index: bool = False) -> Iterator[str]:
    """An in-process moto server on a free 127.0.0.1 port: its URL.

    moto's backends are process globals: two in-process servers (or one and a mock_aws test in the same
    process) share, and collide on, state. Use `process()` when that matters.
    """
    from moto.server import ThreadedMotoServer

    if key_index:
        install_key_index()
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class MotoProcess:
    """A moto server in its own process."""

    url: str
    pid: int


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Wait until the moto server at `url` answers its /moto-api/ page."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the variables a stand-in must not inherit."""
    return {k: v for k, v in (os.environ if base is None else base).items()
            if k not in DROP_ENV and not k.startswith("AWS_ENDPOINT_URL")}


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate, then kill if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def process(*, key_index: bool = False, env: Mapping[str, str] | None = None) -> Iterator[MotoProcess]:
    """A moto server subprocess on a free 127.0.0.1 port, stopped on exit; `env` is cleaned of DROP_ENV."""
    port = free_port()
    module = "audit_bedrock.standin.server" if key_index else "moto.server"
    proc = subprocess.Popen([sys.executable, "-m", module, "-H", HOST, "-p", str(port)], env=clean_env(env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{HOST}:{port}"
    try:
        wait_ready(url)
        yield MotoProcess(url, proc.pid)
    finally:
        stop_process(proc)


def main(argv: list[str]) -> None:
    """`python -m moto.server ARGV` with the key index installed."""
    install_key_index()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
