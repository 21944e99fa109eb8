"""Process-wide botocore savings for our clients: shared models, classes and SSLContext, trimmed models, mallopt."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import botocore.client
import botocore.httpsession

log = logging.getLogger("audit_bedrock")

# The one switch for debugging: set to 1, every Sessions builds plain botocore clients (none of the below).
PLAIN_ENV = "AUDIT_BEDROCK_PLAIN_CLIENTS"
# Services whose model is huge while the scan calls one of its operations: our clients get a model of only
# the operations the collectors declare (for EC2 an IAM action is named as its API operation). EC2's model is
# ~15 MB parsed, 830 operations; the scan calls DescribeRegions. Undeclared operations do not exist on it.
TRIMMED_SERVICES = frozenset({"ec2"})

Trims = Mapping[str, frozenset[str]]  # service -> the only operations its model keeps

_shared: dict[tuple[str, str, str, frozenset[str]], Any] = {}
_shared_lock = threading.Lock()
# The data loaders of our sessions, each with the trims its clients get; any other loader is left alone.
_ours: weakref.WeakKeyDictionary[Any, Trims] = weakref.WeakKeyDictionary()
_building = threading.local()


def enabled(tuned: bool | None = None) -> bool:
    """Whether the savings apply: `tuned` when given, else yes unless AUDIT_BEDROCK_PLAIN_CLIENTS is set to 1."""
    if tuned is not None:
        return tuned
    return os.environ.get(PLAIN_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


def trims(declared_actions: Iterable[str]) -> Trims:
    """The operations kept per trimmed service: the declared IAM actions `service:Operation` of that service."""
    actions = frozenset(declared_actions)
    kept = {service: frozenset(a.split(":", 1)[1] for a in actions if a.startswith(service + ":"))
            for service in TRIMMED_SERVICES}
    return {service: ops for service, ops in kept.items() if ops}


def install(loader: Any, declared_actions: Iterable[str]) -> None:
    """Apply the savings to the clients built from `loader`; they lean on botocore internals, so a botocore
    that moved them only costs memory, never the scan."""
    _ours[loader] = trims(declared_actions)
    try:
        _share_models()
        _share_ssl_context()
    except AttributeError as exc:
        log.debug("botocore internals changed (%s): clients keep their own models and SSL contexts", exc)
    _limit_malloc_arenas()


def release() -> None:
    """Drop the shared models, classes and SSL context (rebuilt when a client is asked for again)."""
    with _shared_lock:
        _shared.clear()


@contextlib.contextmanager
def building() -> Iterator[None]:
    """Clients created on this thread inside the block are ours: they get the shared SSLContext."""
    _building.active = True
    try:
        yield
    finally:
        _building.active = False


def _trims_of(creator: Any) -> Trims | None:
    """The trims of the ClientCreator's loader, or None when the loader is not one of our sessions'."""
    loader = getattr(creator, "_loader", None)
    try:
        return _ours.get(loader) if loader is not None else None
    except TypeError:  # not weak-referenceable, so never registered
        return None


def _share_models() -> None:
    """Let every client built from one of our loaders reuse one service model and one client class per service.

    botocore builds, for every client, a ServiceModel (whose operation models it then all instantiates while
    checking for endpoint discovery) and a new class with a method and a docstring object per operation (EC2
    has ~750). With one client per worker thread and (service, region) that was most of the scanner's memory.
    Both depend only on the service's JSON model (and its trim), so clients of our own sessions (recognised by
    their registered loader) share them; any other botocore user in the process is left alone.
    """
    creator = botocore.client.ClientCreator
    if getattr(creator._load_service_model, "_audit_bedrock", False):
        return

    def memo(kind: str, original: Callable[..., Any], key_of: Callable[..., tuple[str, str]]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            kept = _trims_of(self)
            if kept is None:
                return original(self, *args, **kwargs)
            name, version = key_of(*args, **kwargs)
            key = (kind, name, version, kept.get(name, frozenset()))
            with _shared_lock:
                value = _shared.get(key)
                if value is None:
                    value = _shared[key] = original(self, *args, **kwargs)
            return value

        wrapper._audit_bedrock = True  # type: ignore[attr-defined]
        return wrapper

    original_load = creator._load_service_model

    def load_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        keep = (_trims_of(self) or {}).get(service_name, frozenset())
        if keep:
            return _trimmed_model(self._loader, service_name, api_version, keep)
        return original_load(self, service_name, api_version)

    creator._load_service_model = memo(
        "model", load_model, lambda name, api_version=None: (name, str(api_version)))
    creator._create_client_class = memo(
        "class", creator._create_client_class, lambda name, model: (name, str(model.api_version)))


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


def _share_ssl_context() -> None:
    """Let the clients our sessions build share one SSLContext.

    botocore gives every client its own context, and urllib3 loads the CA bundle into it on the first HTTPS
    connection: ~0.7 MB per client, so ~190 MB for 16 workers x 17 (service, region) clients against real
    AWS (the http:// benchmark endpoint does not show it). Contexts are made to be shared; only clients
    created inside `building()` (a thread-local flag) get the shared one.
    """
    cls = botocore.httpsession.URLLib3Session
    if getattr(cls._get_ssl_context, "_audit_bedrock", False):
        return
    original = cls._get_ssl_context

    def get_ssl_context(self: Any) -> Any:
        if not getattr(_building, "active", False):
            return original(self)
        key = ("ssl", "", "", frozenset[str]())
        with _shared_lock:
            ctx = _shared.get(key)
            if ctx is None:
                ctx = _shared[key] = original(self)
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
