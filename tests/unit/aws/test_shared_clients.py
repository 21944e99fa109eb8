"""Shared clients (issue 16): one client per (service, region) for every thread, signing as each thread's account,
with retry state (standard quota, adaptive rate limiter) per account, so throttling stays where it happened."""

from __future__ import annotations

import json
import threading
from typing import Any

import botocore.credentials
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import bucket, standard

from audit_bedrock.aws.clients import MAX_ATTEMPTS, Sessions

NOWHERE = "http://127.0.0.1:9"  # never reached: every request is answered by a before-send handler
REGION = "eu-west-1"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def creds(account: str) -> botocore.credentials.Credentials:
    return botocore.credentials.Credentials(f"AKIA{account}", f"secret-{account}")


class Wire:
    """Answers kms:ListAliases per signing key: `throttle[key]` ThrottlingException replies first, then success.

    Shapes: botocore kms ListAliasesResponse (Aliases); a JSON-protocol error is {"__type": code, "message"}
    (botocore parsers.BaseJSONParser), and ThrottlingException is in botocore's standard THROTTLED_ERROR_CODES.
    """

    def __init__(self, throttle: dict[str, int]) -> None:
        self.throttle = dict(throttle)
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        key = auth.split("Credential=", 1)[1].split("/", 1)[0]
        with self.lock:
            self.seen.append(key)
            left = self.throttle.get(key, 0)
            self.throttle[key] = max(0, left - 1)
        if left:
            body = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            return AWSResponse(request.url, 400, {"x-amzn-requestid": "t"}, _Raw(json.dumps(body).encode()))
        return AWSResponse(request.url, 200, {"x-amzn-requestid": "ok"}, _Raw(b'{"Aliases": []}'))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sleeping: no backoff delay, and a rate limiter's token bucket never waits (its state still changes)."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setattr(bucket.TokenBucket, "acquire", lambda self, amount=1, block=True: True)


@pytest.mark.parametrize(("throttled", "calm_calls"), [
    pytest.param(3, 4, id="one-account-throttled-three-times"),
    pytest.param(MAX_ATTEMPTS - 1, 2, id="throttled-up-to-the-last-attempt"),
])
def test_throttling_stays_with_the_throttled_account(throttled: int, calm_calls: int) -> None:
    sessions = Sessions(endpoint_url=NOWHERE)
    wire = Wire({"AKIAhot": throttled})
    errors: list[BaseException] = []

    def scan(account: str, calls: int) -> None:
        try:
            c = sessions.client("kms", REGION, creds(account), account)
            c.meta.events.register("before-send", wire, unique_id="wire")
            for _ in range(calls):
                assert c.list_aliases()["Aliases"] == []
        except (AssertionError, RuntimeError, botocore.exceptions.BotoCoreError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=scan, args=("hot", 1)), threading.Thread(target=scan, args=("calm", calm_calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert wire.seen.count("AKIAhot") == throttled + 1  # retried to success
    assert wire.seen.count("AKIAcalm") == calm_calls  # never retried, never limited
    retries = sessions.retries("kms", REGION)
    assert retries is not None
    hot = retries.state("hot").limiter
    calm = retries.state("calm").limiter
    assert hot._enabled is True  # the adaptive limiter of the throttled account now paces it ...
    assert calm._enabled is False  # ... and only it


def test_one_client_signs_as_each_threads_account() -> None:
    """Two threads share the (service, region) client; each request carries its own thread's key."""
    sessions = Sessions(endpoint_url=NOWHERE)
    wire = Wire({})
    made: list[Any] = []
    barrier = threading.Barrier(2)

    def scan(account: str) -> None:
        c = sessions.client("kms", REGION, creds(account), account)
        made.append(c)
        c.meta.events.register("before-send", wire, unique_id="wire")
        barrier.wait()
        for _ in range(5):
            c.list_aliases()

    threads = [threading.Thread(target=scan, args=(a,)) for a in ("a1", "a2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made[0] is made[1]
    assert sorted(wire.seen) == ["AKIAa1"] * 5 + ["AKIAa2"] * 5


def test_a_thread_bound_to_no_account_cannot_sign() -> None:
    sessions = Sessions(endpoint_url=NOWHERE)
    c = sessions.client("kms", REGION, creds("x"), "x")
    sessions.begin_account()
    with pytest.raises(RuntimeError, match="no account selected"):
        c.list_aliases()
    with sessions.bind(creds("y"), "y"):
        c.meta.events.register("before-send", Wire({}), unique_id="wire")
        assert sessions.bound_account() == "y"
        c.list_aliases()
    assert sessions.bound_account() == ""


@pytest.mark.parametrize(("accounts", "ended", "kept"), [
    pytest.param(["a", "b"], ["a"], {"b"}, id="an-ended-account-is-forgotten"),
    pytest.param([f"x{i}" for i in range(70)], [], {f"x{i}" for i in range(6, 70)}, id="at-most-64-kept"),
])
def test_retry_states_live_while_their_account_is_scanned(accounts: list[str], ended: list[str],
                                                          kept: set[str]) -> None:
    """Each state is ~8 KB: kept per account in flight, not per account ever scanned (memory at 5,000 accounts)."""
    sessions = Sessions(endpoint_url=NOWHERE)
    wire = Wire({})
    for account in accounts:
        c = sessions.client("kms", REGION, creds(account), account)
        c.meta.events.register("before-send", wire, unique_id="wire")
        c.list_aliases()
    for account in ended:
        sessions.end_account(account)
    retries = sessions.retries("kms", REGION)
    assert retries is not None
    assert set(retries._states) == kept


@pytest.mark.parametrize("event", [
    pytest.param("request-created.kms.ListAliases", id="request-created"),
    pytest.param("before-send.kms.ListAliases", id="before-send"),
    pytest.param("needs-retry.kms.ListAliases", id="needs-retry"),
    pytest.param("after-call.kms.ListAliases", id="after-call"),
])
def test_retry_handlers_are_called_as_botocores_emitter_calls_them(event: str) -> None:
    """KeyedRetries calls botocore's retry handlers directly (no emitter per account): the same handlers, in the
    order botocore's HierarchicalEmitter calls them for that event (the more specific event name first)."""
    from types import SimpleNamespace

    from botocore.hooks import HierarchicalEmitter
    from botocore.retries import adaptive

    sessions = Sessions(endpoint_url=NOWHERE)
    c = sessions.client("kms", REGION, creds("a"), "a")
    retries = sessions.retries("kms", REGION)
    assert retries is not None
    emitter = HierarchicalEmitter()
    stub = SimpleNamespace(meta=SimpleNamespace(events=emitter, service_model=c.meta.service_model,
                                                config=c.meta.config))
    standard.register_retry_handler(stub, max_attempts=MAX_ATTEMPTS)
    adaptive.register_retry_handler(stub)
    expected = [h.__qualname__ for h in emitter._handlers.prefix_search(event)]
    got = [h.__qualname__ for h in retries.state("a").handlers.get(event.split(".")[0], ())]
    assert got == expected
    assert got  # every one of the four events has a retry handler
