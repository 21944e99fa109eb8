"""Sessions: one botocore session per worker thread, clients from explicit credentials, adaptive retries."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.config
import botocore.credentials
import botocore.session
from botocore.exceptions import ClientError

log = logging.getLogger("audit_bedrock")

SESSION_NAME = "audit-bedrock"
MAX_ATTEMPTS = 10
CLIENT_CONFIG = botocore.config.Config(
    retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="audit-bedrock",
)


@dataclass
class CallLog:
    """Counts operations, remembers request fingerprints, and notices identical repeats."""

    calls: int = 0
    duplicates: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    _seen: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, account: str, region: str, service: str, operation: str, request: dict[str, Any]) -> None:
        """Count one operation; `request` is botocore's serialized request dict (before-call's `params`)."""
        wire = [request.get("method"), request.get("url_path"), request.get("query_string"), request.get("body")]
        key = hashlib.blake2b(
            json.dumps([account, region, service, operation, wire], sort_keys=True, default=str).encode(),
            digest_size=12,
        ).digest()
        name = f"{service}:{operation}"
        with self._lock:
            self.calls += 1
            self.operations[name] = self.operations.get(name, 0) + 1
            if key in self._seen:
                self.duplicates += 1
                log.debug("repeated identical request %s in %s/%s", name, account, region)
            else:
                self._seen.add(key)


class Sessions:
    """Builds clients for the caller and for member accounts reached through AssumeRole."""

    def __init__(self, profile: str | None = None, endpoint_url: str | None = None,
                 home_region: str | None = None, max_pool: int = 10) -> None:
        self._profile = profile
        self._endpoint_url = endpoint_url
        self._local = threading.local()
        self._config = CLIENT_CONFIG.merge(botocore.config.Config(max_pool_connections=max_pool))
        base = self._new_session()
        self.home_region = home_region or base.get_config_variable("region") or "us-east-1"
        self._caller_credentials = base.get_credentials()
        if self._caller_credentials is None:
            from audit_bedrock.errors import UsageError
            raise UsageError("no AWS credentials found (set a profile, environment variables or SSO)")
        self.calls = CallLog()
        self._hooks: list[Callable[..., Any]] = []

    def add_hook(self, hook: Callable[..., Any]) -> None:
        """Register an extra before-call hook on every client made from now on (tests use it).

        The hook gets botocore's before-call arguments: `model` (operation model, `model.name`,
        `model.service_model.service_name`) and `params`, the serialized request dict (`params["body"]`).
        """
        self._hooks.append(hook)

    def _new_session(self) -> botocore.session.Session:
        s = botocore.session.Session(profile=self._profile)
        return s

    def _worker_session(self) -> botocore.session.Session:
        s: botocore.session.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = self._new_session()
            self._local.session = s
        return s

    def caller_credentials(self) -> botocore.credentials.Credentials:
        return self._caller_credentials  # type: ignore[no-any-return]

    def client(self, service: str, region: str, credentials: botocore.credentials.Credentials,
               account: str) -> Any:
        """A client of this worker's session, signed with `credentials`' current frozen keys."""
        frozen = credentials.get_frozen_credentials()
        c = self._worker_session().create_client(
            service, region_name=region, endpoint_url=self._endpoint_url,
            aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token, config=self._config,
        )

        def count(model: Any, params: Any, **_: Any) -> None:
            self.calls.record(account, region, service, model.name, params)

        c.meta.events.register("before-call", count)
        for hook in self._hooks:
            c.meta.events.register("before-call", hook)
        return c

    def assume(self, account_id: str, role_name: str, external_id: str | None,
               caller_account: str) -> botocore.credentials.Credentials:
        """Refreshable credentials for `role_name` in `account_id`; raises ClientError when denied."""
        role_arn = f"arn:aws:iam::{account_id}:role/{role_name}"

        def fetch() -> dict[str, Any]:
            sts = self.client("sts", self.home_region, self._caller_credentials, caller_account)
            kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME,
                                      "DurationSeconds": 3600}
            if external_id:
                kwargs["ExternalId"] = external_id
            creds = sts.assume_role(**kwargs)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat(),
            }

        return botocore.credentials.RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role")


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def error_message(exc: BaseException) -> str:
    """A one-line reason safe to print: the AWS code and message, never credentials."""
    if isinstance(exc, ClientError):
        msg = str(exc.response.get("Error", {}).get("Message", ""))
        return f"{error_code(exc)}: {msg}"[:400] if msg else error_code(exc)
    return f"{type(exc).__name__}: {exc}"[:400]
