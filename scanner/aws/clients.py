"""Clients: one botocore session per worker thread, switchable credentials per account, AssumeRole, call counts."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import botocore.config
import botocore.credentials
import botocore.session
from botocore.retries import adaptive, standard

from audit_bedrock.aws import tuning
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
    """Credentials that sign as whichever account the calling thread is bound to (Sessions.bind).

    Every client is shared by every thread (botocore clients are thread-safe for calls), so one client per
    (service, region) serves the whole scan; signing happens in the calling thread and asks for the frozen
    keys at every request, so the thread's binding decides the account. A thread bound to nothing cannot sign.
    """

    def __init__(self, local: threading.local) -> None:
        super().__init__("", "")
        self._local = local

    def _target(self) -> botocore.credentials.Credentials:
        binding: _Binding | None = getattr(self._local, "binding", None)
        if binding is None:
            raise RuntimeError("no account selected on this thread")
        return binding.credentials

    def get_frozen_credentials(self) -> botocore.credentials.ReadOnlyCredentials:
        return self._target().get_frozen_credentials()

    @property  # type: ignore[misc]
    def account_id(self) -> str | None:
        binding: _Binding | None = getattr(self._local, "binding", None)
        return getattr(binding.credentials, "account_id", None) if binding is not None else None

    @account_id.setter
    def account_id(self, _: str | None) -> None:  # Credentials.__init__ assigns it
        return


class _Provider:
    """A credential_provider component that hands a session a given credentials object."""

    def __init__(self, creds: botocore.credentials.Credentials) -> None:
        self.creds = creds

    def load_credentials(self) -> botocore.credentials.Credentials:
        return self.creds


@dataclass(frozen=True)
class _Binding:
    """The account a thread's calls sign as, and its credentials."""

    credentials: botocore.credentials.Credentials
    account: str


class _Recorder:
    """Stands in for a client's event emitter while botocore's retry set-up functions register their handlers."""

    def __init__(self) -> None:
        self.registered: list[tuple[str, Callable[..., Any]]] = []

    def register(self, event_name: str, handler: Callable[..., Any], unique_id: str | None = None,
                 unique_id_uses_count: bool = False) -> None:
        self.registered.append((event_name, handler))


@dataclass(frozen=True)
class RetryState:
    """One account's retry state on one client: botocore's handlers by event kind, and its adaptive rate limiter."""

    handlers: dict[str, tuple[Callable[..., Any], ...]]  # "needs-retry" -> handlers, the most specific event first
    limiter: Any


class KeyedRetries:
    """botocore's standard and adaptive retry state, one per account, for a client every account shares.

    botocore keeps the retry quota (standard) and the client-side rate limiter (adaptive) per client. With one
    client per (service, region) for the whole scan, a throttled account would drain the quota and slow the
    sending rate of every account in that region. So the client itself is built without retries
    (total_max_attempts 1) and this dispatcher forwards its retry events to botocore's own handlers, made per
    key (the calling thread's account) by botocore's own `register_retry_handler` functions: throttling stays
    with the account and region that was throttled, as AWS throttles.

    The handlers are called directly, in the order botocore's emitter would call them (the more specific event
    first): an emitter per state cost ~0.8 ms to build, and most accounts make one or two calls per client.
    A state lives while its account is scanned (`forget` drops it when the account is done: 5,000 accounts x 17
    regions x 4 services of them were most of the scanner's memory), and at most `keep` are kept per client in
    any case (the oldest made goes first).
    """

    def __init__(self, client: Any, key: Callable[[], str], max_attempts: int, keep: int = 64) -> None:
        self._meta = client.meta
        self._key = key
        self._max_attempts = max_attempts
        self._keep = keep
        self._states: dict[str, RetryState] = {}  # insertion order: the oldest first
        self._lock = threading.Lock()
        hyphenized = self._hyphenized = client.meta.service_model.service_id.hyphenize()
        # the client's own (single-attempt) standard handlers would mark every answer MaxAttemptsReached
        client.meta.events.unregister(f"needs-retry.{hyphenized}", unique_id=f"retry-config-{hyphenized}")
        client.meta.events.unregister(f"request-created.{hyphenized}", unique_id=f"seed-max-attempts-{hyphenized}")
        for kind in self._make().handlers:  # the events botocore's retry handlers listen to
            client.meta.events.register(f"{kind}.{hyphenized}", functools.partial(self._forward, kind),
                                        unique_id=f"audit-bedrock-keyed-{kind}-{hyphenized}")

    def _make(self) -> RetryState:
        recorder = _Recorder()
        stub = SimpleNamespace(meta=SimpleNamespace(events=recorder, service_model=self._meta.service_model,
                                                    config=self._meta.config))
        standard.register_retry_handler(stub, max_attempts=self._max_attempts)
        limiter = adaptive.register_retry_handler(stub)
        handlers: dict[str, list[tuple[int, Callable[..., Any]]]] = {}
        for event_name, handler in recorder.registered:
            kind, _, rest = event_name.partition(".")
            if rest not in ("", self._hyphenized):  # would match only some operations: not what botocore does today
                raise RuntimeError(f"unexpected botocore retry event {event_name}")
            handlers.setdefault(kind, []).append((-event_name.count("."), handler))
        # the emitter calls the handlers of the most specific event first, each event's in registration order
        return RetryState({kind: tuple(h for _, h in sorted(found, key=lambda p: p[0]))
                           for kind, found in handlers.items()}, limiter)

    def state(self, key: str) -> RetryState:
        """The retry state of `key`, made on first use."""
        found = self._states.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._states.get(key)
            if found is None:
                found = self._states[key] = self._make()
                while len(self._states) > self._keep:
                    del self._states[next(iter(self._states))]
            return found

    def forget(self, key: str) -> None:
        """Drop the state of `key` (its account is done)."""
        with self._lock:
            self._states.pop(key, None)

    def _forward(self, kind: str, event_name: str, **kwargs: Any) -> Any:
        """Call `key`'s handlers of `kind` as the emitter would: every one, the first answer that is not None."""
        answer = None
        for handler in self.state(self._key()).handlers.get(kind, ()):
            response = handler(event_name=event_name, **kwargs)
            if answer is None:
                answer = response
        return answer


@dataclass
class _Clients:
    """The scan's clients, one per (service, region), shared by every thread, and the session that builds them."""

    session: botocore.session.Session
    generation: int
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    retries: dict[tuple[str, str], KeyedRetries] = field(default_factory=dict)


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
    ~30 MB and ~0.1 s) and a client costs milliseconds and owns a connection pool, so the scan builds one client
    per (service, region), shared by every thread (botocore clients are thread-safe for calls): memory no longer
    grows with workers x regions. Each thread binds the account its calls sign as (`bind`, or `client`, which
    binds the calling thread); ThreadCredentials reads that binding when a request is signed. Retry state
    (standard quota, adaptive rate limiter) is per account and client (KeyedRetries), so a throttled account
    slows only its own calls in that region.

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
        self._shared: _Clients | None = None
        self._build_lock = threading.RLock()  # botocore sessions are not thread-safe: clients are built one at a time
        self._caller_sts: Any = None
        self._sts_lock = threading.Lock()

    def _tune(self) -> None:
        if self.tuned:
            tuning.install(self._loader, self._declared)

    def reserve(self, concurrency: int) -> None:
        """Size the connection pools of clients built from now on for `concurrency` threads calling at once
        (every thread shares them; urllib3 drops connections beyond a pool's size)."""
        self._max_pool = max(self._max_pool, concurrency)

    def add_hook(self, hook: Callable[..., Any]) -> None:
        """Register an extra before-call hook on every client made from now on (tests use it)."""
        self._hooks.append(hook)
        self._generation += 1  # clients built before the hook are rebuilt
        self._caller_sts = None

    def _new_session(self) -> botocore.session.Session:
        s = botocore.session.Session(profile=self._profile)
        return s

    def _clients(self) -> _Clients:
        with self._build_lock:
            shared = self._shared
            if shared is None or shared.generation != self._generation:
                s = self._new_session()
                s.register_component("data_loader", self._loader)
                s.register_component("credential_provider", _Provider(ThreadCredentials(self._local)))
                shared = self._shared = _Clients(s, self._generation)
            return shared

    def caller_credentials(self) -> botocore.credentials.Credentials:
        return self._caller_credentials  # type: ignore[no-any-return]

    def bound_account(self) -> str:
        """The account this thread's calls sign as ("" when none)."""
        binding: _Binding | None = getattr(self._local, "binding", None)
        return binding.account if binding is not None else ""

    @contextmanager
    def bind(self, credentials: botocore.credentials.Credentials, account: str) -> Iterator[None]:
        """Inside the block this thread's calls sign with `credentials` as `account`; the previous binding after."""
        previous = getattr(self._local, "binding", None)
        self._local.binding = _Binding(credentials, account)
        try:
            yield
        finally:
            self._local.binding = previous

    def client(self, service: str, region: str, credentials: botocore.credentials.Credentials,
               account: str) -> Any:
        """The client for (service, region), shared by every thread; this thread's calls now sign with
        `credentials` as `account` (until it binds another account)."""
        self._local.binding = _Binding(credentials, account)
        key = (service, region)
        shared = self._clients()
        c = shared.clients.get(key)
        if c is None:
            with self._build_lock:
                shared = self._clients()
                c = shared.clients.get(key)
                if c is None:
                    c = shared.clients[key] = self._build(shared, service, region)
        return c

    def retries(self, service: str, region: str) -> KeyedRetries | None:
        """The per-account retry states of the (service, region) client, once it exists."""
        shared = self._shared
        return shared.retries.get((service, region)) if shared is not None else None

    def _create(self, session: botocore.session.Session, service: str, region: str, **kwargs: Any) -> Any:
        with tuning.building() if self.tuned else nullcontext():
            return session.create_client(service, region_name=region, **kwargs)

    def _build(self, shared: _Clients, service: str, region: str) -> Any:
        config = CLIENT_CONFIG.merge(botocore.config.Config(
            max_pool_connections=self._max_pool, retries={"mode": "standard", "total_max_attempts": 1}))
        c = self._create(shared.session, service, region, endpoint_url=self._endpoint_url, config=config)
        shared.retries[(service, region)] = KeyedRetries(c, self.bound_account, MAX_ATTEMPTS,
                                                         keep=max(64, 4 * self._max_pool))

        def count(model: Any, params: Any, **_: Any) -> None:
            self.calls.record(self.bound_account(), region, service, model.name, params)

        c.meta.events.register("before-call", count)
        if service == "s3control":
            keep_account_label_off_loopback(c)
        for hook in self._hooks:
            c.meta.events.register("before-call", hook)
        return c

    def close(self) -> None:
        """Drop the clients, the caller's STS client and the shared models, classes and SSL context (rebuilt if a
        client is asked for again)."""
        with self._build_lock:
            self._shared = None
        self._local.__dict__.pop("binding", None)
        with self._sts_lock:
            self._caller_sts = None
        if self.tuned:
            tuning.release()
        self._loader = self._new_session().get_component("data_loader")  # the old one holds parsed models
        self._tune()

    def end_account(self, account: str) -> None:
        """The scan of `account` is over: forget its retry states (a later call for it starts afresh)."""
        shared = self._shared
        if shared is None:
            return
        with self._build_lock:
            retries = list(shared.retries.values())
        for r in retries:
            r.forget(account)

    def begin_account(self) -> None:
        """Called by a worker before it starts an account: this thread signs for no account until it binds one."""
        self._local.__dict__.pop("binding", None)

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
