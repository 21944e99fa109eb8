"""Clients: one botocore session per worker thread, switchable credentials per account, AssumeRole, call counts."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import botocore.config
import botocore.credentials
import botocore.session

from audit_bedrock.aws import tuning
from audit_bedrock.aws.errors import THROTTLING_CODES
from audit_bedrock.aws.redact import register_secret
from audit_bedrock.errors import UsageError

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
        # `url` holds the full target (an S3 bucket is in it, not in url_path); url_path is the fallback.
        wire = [request.get("method"), request.get("url") or request.get("url_path"), request.get("query_string"),
                request.get("body")]
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


class ThreadCredentials(botocore.credentials.Credentials):  # type: ignore[misc]
    """Credentials that sign as whichever account this worker thread is scanning right now.

    Each worker thread keeps one client per (service, region) and reuses it from account to account, so
    clients, their models and their kept-alive connections are built once per worker instead of once per
    account and region. Signing asks for the frozen keys at every request, so switching `current` is enough.
    """

    def __init__(self) -> None:
        super().__init__("", "")
        self.current: botocore.credentials.Credentials | None = None

    def _target(self) -> botocore.credentials.Credentials:
        if self.current is None:
            raise RuntimeError("no account selected on this worker thread")
        return self.current

    def get_frozen_credentials(self) -> botocore.credentials.ReadOnlyCredentials:
        return self._target().get_frozen_credentials()

    @property  # type: ignore[misc]
    def account_id(self) -> str | None:
        return getattr(self.current, "account_id", None)

    @account_id.setter
    def account_id(self, _: str | None) -> None:  # Credentials.__init__ assigns it
        return


class _Provider:
    """A credential_provider component that hands a session a given credentials object."""

    def __init__(self, creds: botocore.credentials.Credentials) -> None:
        self.creds = creds

    def load_credentials(self) -> botocore.credentials.Credentials:
        return self.creds


@dataclass
class _Worker:
    """One thread's botocore session, its switchable credentials, and its clients."""

    session: botocore.session.Session
    creds: ThreadCredentials
    generation: int
    account: str = ""
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def keep_account_label_off_loopback(client: Any) -> None:
    """Make an s3control client reach a loopback endpoint override (the embedded stand-in, tests).

    s3control's endpoint rules put the request's account id in front of the host, an override included
    (`http://ACCOUNT.127.0.0.1:PORT`), which no resolver answers. For an override whose host is loopback, a
    before-sign handler puts the override's own host back (before signing, so the signed Host is the one
    sent). AWS endpoints, and non-loopback overrides such as a VPC endpoint, are left as botocore builds them.
    """
    override = urlsplit(client.meta.endpoint_url or "")
    if not is_loopback(override.hostname):
        return
    host = override.hostname or ""

    def strip(request: Any, **_: Any) -> None:
        url = urlsplit(request.url)
        label = (url.hostname or "")[: -len(host) - 1]
        if (url.hostname or "").endswith("." + host) and label.isdigit():
            request.url = urlunsplit(url._replace(netloc=override.netloc))

    client.meta.events.register("before-sign.s3-control", strip)


class Sessions:
    """Builds clients for the caller and for member accounts reached through AssumeRole.

    Cost model (see docs/performance.md): a botocore session loads service models (the EC2 one alone is
    ~30 MB and ~0.1 s), so every worker session shares one data loader; a client costs milliseconds and owns a
    connection pool, so each worker thread builds one client per (service, region) and re-points it at the
    account it is scanning. Adaptive retries are per client, so a throttled account slows only the worker
    scanning it; a worker drops a client that saw throttling before it moves to its next account.

    `declared_actions` (the collectors' IAM actions) trims the models of tuning.TRIMMED_SERVICES to those
    operations. `tuned=False`, or AUDIT_BEDROCK_PLAIN_CLIENTS=1 when `tuned` is not given, builds plain botocore
    clients: none of the process-wide savings in audit_bedrock.aws.tuning (for debugging).
    """

    def __init__(self, profile: str | None = None, endpoint_url: str | None = None,
                 home_region: str | None = None, max_pool: int = 10, *,
                 declared_actions: Iterable[str] = (), tuned: bool | None = None) -> None:
        self._profile = profile
        self._endpoint_url = endpoint_url
        self._local = threading.local()
        self._max_pool = max_pool
        self._config = CLIENT_CONFIG.merge(botocore.config.Config(max_pool_connections=max_pool))
        self._declared = tuple(declared_actions)
        self.tuned = tuning.enabled(tuned)
        if not self.tuned:
            log.debug("plain botocore clients: no shared models, classes or SSL context, no trimmed models")
        base = self._new_session()
        self._loader = base.get_component("data_loader")
        self._tune()
        self.home_region = home_region or base.get_config_variable("region") or "us-east-1"
        self._caller_credentials = base.get_credentials()
        if self._caller_credentials is None:
            raise UsageError("no AWS credentials found (set a profile, environment variables or SSO)")
        caller = self._caller_credentials.get_frozen_credentials()
        register_secret(caller.secret_key, caller.token)
        self.calls = CallLog()
        self._hooks: list[Callable[..., Any]] = []
        self._generation = 0
        self._first_build = threading.Lock()
        self._built: set[str] = set()
        self._caller_sts: Any = None
        self._sts_lock = threading.Lock()

    def _tune(self) -> None:
        if self.tuned:
            tuning.install(self._loader, self._declared)

    def add_hook(self, hook: Callable[..., Any]) -> None:
        """Register an extra before-call hook on every client made from now on (tests use it)."""
        self._hooks.append(hook)
        self._generation += 1  # clients built before the hook are rebuilt
        self._caller_sts = None

    def _new_session(self) -> botocore.session.Session:
        s = botocore.session.Session(profile=self._profile)
        return s

    def _worker(self) -> _Worker:
        w: _Worker | None = getattr(self._local, "worker", None)
        if w is None or w.generation != self._generation:
            s = self._new_session()
            s.register_component("data_loader", self._loader)
            creds = ThreadCredentials()
            s.register_component("credential_provider", _Provider(creds))
            w = _Worker(s, creds, self._generation)
            self._local.worker = w
        return w

    def caller_credentials(self) -> botocore.credentials.Credentials:
        return self._caller_credentials  # type: ignore[no-any-return]

    def client(self, service: str, region: str, credentials: botocore.credentials.Credentials,
               account: str) -> Any:
        """This worker's client for (service, region), now signing with `credentials` as `account`.

        The thread's clients all follow the last call: a client obtained for one account must not be used
        after the same thread asked for another account's client (the scanner scans one account per thread
        at a time).
        """
        w = self._worker()
        w.creds.current = credentials
        w.account = account
        key = (service, region)
        c = w.clients.get(key)
        if c is None:
            c = w.clients[key] = self._build(w, service, region)
        return c

    def _create(self, session: botocore.session.Session, service: str, region: str, **kwargs: Any) -> Any:
        with tuning.building() if self.tuned else nullcontext():
            return session.create_client(service, region_name=region, **kwargs)

    def _build(self, w: _Worker, service: str, region: str) -> Any:
        def create() -> Any:
            return self._create(w.session, service, region, endpoint_url=self._endpoint_url, config=self._config)

        if service in self._built:
            c = create()
        else:  # the first client of a service loads its model once, not once per racing thread
            with self._first_build:
                c = create()
                self._built.add(service)

        def count(model: Any, params: Any, **_: Any) -> None:
            self.calls.record(w.account, region, service, model.name, params)

        c.meta.events.register("before-call", count)
        c.meta.events.register("needs-retry", self._throttle_watch(w, service, region))
        if service == "s3control":
            keep_account_label_off_loopback(c)
        for hook in self._hooks:
            c.meta.events.register("before-call", hook)
        return c

    def _throttle_watch(self, w: _Worker, service: str, region: str) -> Callable[..., None]:
        def watch(response: Any = None, **_: Any) -> None:
            if response is None:
                return
            http, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code", "")
            if getattr(http, "status_code", 0) == 429 or code in THROTTLING_CODES:
                w.clients.pop((service, region), None)  # the next account starts with a fresh rate limiter
        return watch

    def close(self) -> None:
        """Drop this thread's clients, the caller's STS client and the shared models, classes and SSL context
        (rebuilt if a client is asked for again). Worker threads' clients go with their threads."""
        self._local.__dict__.pop("worker", None)
        with self._sts_lock:
            self._caller_sts = None
        if self.tuned:
            tuning.release()
        self._built.clear()
        self._loader = self._new_session().get_component("data_loader")  # the old one holds parsed models
        self._tune()

    def begin_account(self) -> None:
        """Called by a worker before it starts an account: forget which account its clients sign for."""
        w = self._worker()
        w.creds.current = None
        w.account = ""

    def _sts(self) -> Any:
        """The caller's STS client, shared by every worker: AssumeRole is throttled per caller account."""
        with self._sts_lock:
            if self._caller_sts is None:
                s = self._new_session()
                s.register_component("data_loader", self._loader)
                # the caller's own credentials object, so a refreshable one (SSO, a profile's role) refreshes
                s.register_component("credential_provider", _Provider(self._caller_credentials))
                c = self._create(
                    s, "sts", self.home_region, endpoint_url=self._endpoint_url,
                    config=CLIENT_CONFIG.merge(botocore.config.Config(max_pool_connections=max(self._max_pool, 64))),
                )
                c.meta.events.register("before-call", self._count_caller)
                for hook in self._hooks:
                    c.meta.events.register("before-call", hook)
                self._caller_sts = c
            return self._caller_sts

    def _count_caller(self, model: Any, params: Any, **_: Any) -> None:
        self.calls.record("caller", self.home_region, "sts", model.name, params)

    def assume(self, account_id: str, role_name: str, external_id: str | None,
               caller_account: str) -> botocore.credentials.Credentials:
        """Refreshable credentials for `role_name` in `account_id`; raises ClientError when denied."""
        role_arn = f"arn:aws:iam::{account_id}:role/{role_name}"

        def fetch() -> dict[str, Any]:
            kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME,
                                      "DurationSeconds": 3600}
            if external_id:
                kwargs["ExternalId"] = external_id
            creds = self._sts().assume_role(**kwargs)["Credentials"]
            register_secret(creds["SecretAccessKey"], creds["SessionToken"])
            return {
                "access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat(),
            }

        return botocore.credentials.RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role")
