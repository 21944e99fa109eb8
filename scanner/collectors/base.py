"""What every collector shares: the contexts it reads from and the call wrapper that turns errors into gaps."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from audit_bedrock.aws.errors import error_code, error_message
from audit_bedrock.facts import gap

log = logging.getLogger("audit_bedrock")


@contextlib.contextmanager
def no_peer(account_id: str) -> Iterator[Any]:
    """The default way into another account: none (see AccountContext.peer)."""
    yield None


@dataclass
class AccountContext:
    """One account being scanned: how to build its clients, and a cache of them.

    The account's regions are scanned concurrently and share this context: reads shared across regions go
    through `once`, which makes each of them once per account however many regions ask at the same time.
    """

    account_id: str
    account_name: str
    make_client: Callable[[str, str], Any]
    home_region: str
    # Scan settings collectors read (usage_lookback_days, requested_regions), never globals.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Per-account memo of reads shared across regions and collectors (IAM policies, buckets, log groups).
    cache: dict[Any, Any] = field(default_factory=dict)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    # `with peer(ID) as other:` enters another ACTIVE account of the organization through its audit role, for
    # reads AWS refuses across accounts (kms:GetKeyPolicy). `other` is that account's AccountContext, a gap
    # (it could not be entered) or None (not an account of the organization). Only inside the block.
    peer: Callable[[str], contextlib.AbstractContextManager[Any]] = no_peer
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict, repr=False, compare=False)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        found = self._clients.get(key)
        if found is None:
            found = self._clients.setdefault(key, self.make_client(service, region))
        return found

    def once(self, key: Any, compute: Callable[[], Any]) -> Any:
        """cache[key], computed by `compute()` the first time: a second thread asking for the same key waits for
        the first one's answer instead of repeating its requests. Distinct keys do not wait for each other."""
        if key in self.cache:
            return self.cache[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self.cache:
                self.cache[key] = compute()
            return self.cache[key]


@dataclass
class RegionContext:
    """One account and region being scanned."""

    account: AccountContext
    region: str

    def client(self, service: str) -> Any:
        return self.account.client(service, self.region)


class Failure(Exception):
    """An AWS call failed; `fact` is the gap value to record in its place."""

    def __init__(self, fact: dict[str, Any], code: str, cause: BaseException) -> None:
        super().__init__(fact["message"])
        self.fact = fact
        self.code = code
        self.cause = cause


@contextlib.contextmanager
def reading(action: str, where: str) -> Iterator[None]:
    """Turn an AWS or transport error inside the block into a Failure carrying a gap for `action`."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        log.info("%s: %s failed: %s", where, action, error_message(exc))
        raise Failure(gap(action, code, error_message(exc)), code, exc) from exc
    except (BotoCoreError, ResponseParserError) as exc:  # an unparsable answer is not a BotoCoreError
        code = type(exc).__name__
        log.warning("%s: %s failed: %s", where, action, error_message(exc))
        raise Failure(gap(action, code, error_message(exc)), code, exc) from exc


def call(client: Any, operation: str, action: str, where: str, **kwargs: Any) -> dict[str, Any]:
    """Call `operation`; on any AWS or transport error raise Failure carrying a gap for `action`."""
    with reading(action, where):
        result: dict[str, Any] = getattr(client, operation)(**kwargs)
    return result


def paginate_pages(pages: Iterable[dict[str, Any]], action: str, where: str) -> Iterator[dict[str, Any]]:
    """Yield pages of a paginator lazily (so a caller may stop early); errors raise Failure like `call`."""
    it = iter(pages)
    while True:
        with reading(action, where):
            page = next(it, None)
        if page is None:
            return
        yield page


def paginate(client: Any, operation: str, action: str, where: str, result_key: str,
             **kwargs: Any) -> list[Any]:
    """Every item of a paginated operation; raises Failure like `call`."""
    items: list[Any] = []
    pages = client.get_paginator(operation).paginate(**kwargs)
    for page in paginate_pages(pages, action, where):
        items.extend(page.get(result_key) or [])
    return items


@dataclass(frozen=True)
class Reply:
    """One read: the response, or `absent` (an expected 'does not exist' code), or a gap."""

    data: dict[str, Any] | None = None
    gap: dict[str, Any] | None = None
    code: str = ""

    @property
    def absent(self) -> bool:
        return self.data is None and self.gap is None


def attempt(client: Any, operation: str, action: str, where: str, absent: Collection[str] = (),
            **kwargs: Any) -> Reply:
    """Call `operation`: codes in `absent` are facts (Reply.absent), any other error is a gap."""
    try:
        return Reply(data=call(client, operation, action, where, **kwargs))
    except Failure as f:
        if f.code in absent:
            return Reply(code=f.code)
        return Reply(gap=f.fact, code=f.code)


def attempt_pages(client: Any, operation: str, action: str, where: str, result_key: str,
                  absent: Collection[str] = (), **kwargs: Any) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """Every item of a paginated read as (items, None); (None, None) when absent; (None, gap) on error."""
    try:
        return paginate(client, operation, action, where, result_key, **kwargs), None
    except Failure as f:
        if f.code in absent:
            return None, None
        return None, f.fact


class RegionCollector(Protocol):
    """Adds facts to one region document; declares the IAM actions it may call."""

    name: str
    actions: tuple[str, ...]

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]: ...


class AccountCollector(Protocol):
    """Adds account-level facts (IAM is global) once the region documents are known."""

    name: str
    actions: tuple[str, ...]

    def collect(self, ctx: AccountContext, account: dict[str, Any],
                regions: list[dict[str, Any]]) -> dict[str, Any]: ...
