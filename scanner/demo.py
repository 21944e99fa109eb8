"""The embedded demo: a moto server on a free loopback port, a seeded organization, and a real --org scan."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import replace

from audit_bedrock.api import RunOptions, run
from audit_bedrock.errors import UsageError
from audit_bedrock.standin import server
from audit_bedrock.standin.estate import DEMO_REGIONS, DEMO_SKIPPED_REGION, MEMBER_ROLE
from audit_bedrock.standin.estate import seed_demo as seed
from audit_bedrock.standin.evidence import demo_answers
from audit_bedrock.standin.proxy import Proxy

__all__ = ["DEMO_REGIONS", "DEMO_SKIPPED_REGION", "MEMBER_ROLE", "demo_config_path", "moto_server", "run_demo",
           "seed"]

log = logging.getLogger("audit_bedrock")


@contextlib.contextmanager
def _demo_environment(endpoint: str) -> Iterator[None]:
    """Point botocore at the stand-in with throwaway credentials, then restore the environment."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ.pop(k, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """The stand-in's in-process moto server on a free 127.0.0.1 port, stopped on exit."""
    if not server.available():
        raise UsageError("--demo needs the demo extra: pip install 'audit-bedrock[demo]'")
    with server.threaded() as url:
        yield url


def demo_config_path() -> str:
    """The packaged config the demo scans with (approved_destinations, so BIL-017 shows)."""
    from importlib import resources
    return str(resources.files("audit_bedrock") / "demo-config.yaml")


def run_demo(options: RunOptions) -> int:
    """Seed the demo organization and scan it through the --org code path (api.run)."""
    if options.from_facts:
        raise UsageError("--demo and --from-facts cannot be combined")
    if options.merge:
        raise UsageError("--merge combines finished results; it cannot be combined with --demo")
    with moto_server() as upstream, _demo_environment(upstream):
        ids = seed(upstream)
        # The scan goes through the stand-in's proxy: it answers what moto cannot (CloudTrail event
        # history, log group deletion protection) in AWS's wire shapes, and forwards everything else.
        with Proxy(upstream, answers=demo_answers(ids)) as proxy:
            os.environ["AWS_ENDPOINT_URL"] = proxy.url  # _demo_environment restores it
            print(f"audit-bedrock demo: seeded {len(ids)} accounts on a local AWS stand-in at {proxy.url}",
                  file=sys.stderr)
            scope = replace(options.scope, org=True,
                            regions=options.scope.regions or (*DEMO_REGIONS, DEMO_SKIPPED_REGION))
            # the demo's accounts hold only the role Organizations creates: enter them through it unless told otherwise
            scan = replace(options.scan, config=options.scan.config or demo_config_path(),
                           role_name=options.scan.role_name or MEMBER_ROLE)
            return run(replace(options, scope=scope, scan=scan))
