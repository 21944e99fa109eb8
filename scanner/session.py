"""Sessions: one botocore session per worker thread, clients from explicit credentials, adaptive retries."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import botocore.client
import botocore.config
import botocore.credentials
import botocore.httpsession
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
# Error codes botocore's adaptive mode treats as throttling (botocore.retries.standard).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})


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


_shared: dict[tuple[str, str, str], Any] = {}
_shared_lock = threading.Lock()
_shared_loaders: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def _share_models(loader: Any) -> None:
    """Let every client built from `loader` reuse one service model and one client class per service.

    botocore builds, for every client, a ServiceModel (whose operation models it then all instantiates while
    checking for endpoint discovery) and a new class with a method and a docstring object per operation (EC2
    has ~750). With one client per worker thread and (service, region) that was most of the scanner's memory.
    Both depend only on the service's JSON model, so clients of our own sessions (recognised by their shared
    loader) share them; any other botocore user in the process is left alone.
    """
    _shared_loaders[id(loader)] = loader
    creator = botocore.client.ClientCreator
    if getattr(creator._load_service_model, "_audit_bedrock", False):
        return

    def memo(kind: str, original: Callable[..., Any], key_of: Callable[..., tuple[str, str]]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _shared_loaders.get(id(getattr(self, "_loader", None))) is None:
                return original(self, *args, **kwargs)
            key = (kind, *key_of(*args, **kwargs))
            with _shared_lock:
                value = _shared.get(key)
                if value is None:
                    value = _shared[key] = original(self, *args, **kwargs)
            return value

        wrapper._audit_bedrock = True  # type: ignore[attr-defined]
        return wrapper

    original_load = creator._load_service_model

    def load_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        ours = _shared_loaders.get(id(getattr(self, "_loader", None))) is not None
        keep = _declared_operations(service_name) if ours and service_name in TRIMMED_SERVICES else frozenset()
        if keep:
            return _trimmed_model(self._loader, service_name, api_version, keep)
        return original_load(self, service_name, api_version)

    creator._load_service_model = memo(
        "model", load_model, lambda name, api_version=None: (name, str(api_version)))
    creator._create_client_class = memo(
        "class", creator._create_client_class, lambda name, model: (name, str(model.api_version)))


# Services whose model is huge while the scan calls one of its operations: our clients get a model of only
# the operations the collectors declare (for EC2 an IAM action is named as its API operation). EC2's model is
# ~15 MB parsed, 830 operations; the scan calls DescribeRegions. Undeclared operations do not exist on it.
TRIMMED_SERVICES = frozenset({"ec2"})


def _declared_operations(service: str) -> frozenset[str]:
    from audit_bedrock import collectors  # collectors import this module

    prefix = service + ":"
    return frozenset(a[len(prefix):] for a in collectors.required_actions() if a.startswith(prefix))


def _trimmed_model(loader: Any, service_name: str, api_version: str | None, keep: frozenset[str]) -> Any:
    """A ServiceModel with only the `keep` operations and the shapes they reach; the full JSON is read by a
    throwaway loader (same search paths), so it is not cached."""
    import botocore.loaders
    import botocore.model

    scratch = botocore.loaders.Loader(extra_search_paths=loader.search_paths, include_default_search_paths=False)
    full = scratch.load_service_model(service_name, "service-2", api_version=api_version)
    ops = {name: op for name, op in full["operations"].items() if name in keep}
    shapes = full["shapes"]
    needed: set[str] = set()
    todo = [ref["shape"] for op in ops.values() for ref in (op.get("input"), op.get("output"), *op.get("errors", ()))
            if ref]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        shape = shapes[name]
        todo.extend(m["shape"] for m in shape.get("members", {}).values())
        todo.extend(shape[k]["shape"] for k in ("member", "key", "value") if k in shape)
    doc = {**full, "operations": ops, "shapes": {n: shapes[n] for n in sorted(needed)}}
    return botocore.model.ServiceModel(doc, service_name=service_name)


_building = threading.local()
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


def _share_ssl_context() -> None:
    """Let the clients our sessions build share one SSLContext.

    botocore gives every client its own context, and urllib3 loads the CA bundle into it on the first HTTPS
    connection: ~0.7 MB per client, so ~190 MB for 16 workers x 17 (service, region) clients against real
    AWS (the http:// benchmark endpoint does not show it). Contexts are made to be shared; only clients
    created inside Sessions._create (a thread-local flag) get the shared one.
    """
    cls = botocore.httpsession.URLLib3Session
    if getattr(cls._get_ssl_context, "_audit_bedrock", False):
        return
    original = cls._get_ssl_context

    def get_ssl_context(self: Any) -> Any:
        if not getattr(_building, "active", False):
            return original(self)
        with _shared_lock:
            ctx = _shared.get(("ssl", "", ""))
            if ctx is None:
                ctx = _shared[("ssl", "", "")] = original(self)
        return ctx

    get_ssl_context._audit_bedrock = True  # type: ignore[attr-defined]
    cls._get_ssl_context = get_ssl_context


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas: with 16+ worker threads each arena keeps its own high-water mark
    of freed memory, which showed up as ~15 MB of extra RSS per 200 accounts. No-op off glibc."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_arena_max = -8  # <malloc.h> M_ARENA_MAX
    mallopt(m_arena_max, arenas)


def _optimize(loader: Any) -> None:
    """Install the memory savings above; they lean on botocore internals, so a botocore that moved them
    only costs memory, never the scan."""
    try:
        _share_models(loader)
        _share_ssl_context()
    except AttributeError as exc:
        log.debug("botocore internals changed (%s): clients keep their own models and SSL contexts", exc)
    _limit_malloc_arenas()


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


class Sessions:
    """Builds clients for the caller and for member accounts reached through AssumeRole.

    Cost model (see README "Performance"): a botocore session loads service models (the EC2 one alone is
    ~30 MB and ~0.1 s), so every worker session shares one data loader; a client costs milliseconds and owns a
    connection pool, so each worker thread builds one client per (service, region) and re-points it at the
    account it is scanning. Adaptive retries are per client, so a throttled account slows only the worker
    scanning it; a worker drops a client that saw throttling before it moves to its next account.
    """

    def __init__(self, profile: str | None = None, endpoint_url: str | None = None,
                 home_region: str | None = None, max_pool: int = 10) -> None:
        self._profile = profile
        self._endpoint_url = endpoint_url
        self._local = threading.local()
        self._max_pool = max_pool
        self._config = CLIENT_CONFIG.merge(botocore.config.Config(max_pool_connections=max_pool))
        base = self._new_session()
        self._loader = base.get_component("data_loader")
        _optimize(self._loader)
        self.home_region = home_region or base.get_config_variable("region") or "us-east-1"
        self._caller_credentials = base.get_credentials()
        if self._caller_credentials is None:
            from audit_bedrock.errors import UsageError
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

    @staticmethod
    def _create(session: botocore.session.Session, service: str, region: str, **kwargs: Any) -> Any:
        _building.active = True
        try:
            return session.create_client(service, region_name=region, **kwargs)
        finally:
            _building.active = False

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
        with _shared_lock:
            _shared.clear()
        self._built.clear()
        self._loader = self._new_session().get_component("data_loader")  # the old one holds parsed models
        _optimize(self._loader)

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


_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
# Credential-shaped text in botocore's debug output: request headers and the AssumeRole answer.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"&,}\s]+)"),
    re.compile(r"(<(SecretAccessKey|SessionToken)>)([^<]*)(?=</\2>)"),
    re.compile(r"(?i)(['\"](?:SecretAccessKey|SessionToken|secret_key|token|aws_secret_access_key|"
               r"aws_session_token)['\"]\s*:\s*b?['\"])([^'\"]+)"),
)
REDACTED = "<redacted>"


def register_secret(*values: str | None) -> None:
    """Remember credential values so that no log record can show them."""
    with _SECRETS_LOCK:
        _SECRETS.update(v for v in values if v and len(v) >= 8)


def redact(text: str) -> str:
    """`text` with every registered secret and every credential-shaped field replaced."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """A handler filter that redacts credentials from every record (botocore's debug logging included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: the handler reports it as usual
        clean = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def error_message(exc: BaseException) -> str:
    """A one-line reason safe to print: the AWS code and message, never credentials."""
    if isinstance(exc, ClientError):
        msg = str(exc.response.get("Error", {}).get("Message", ""))
        return f"{error_code(exc)}: {msg}"[:400] if msg else error_code(exc)
    return f"{type(exc).__name__}: {exc}"[:400]
