"""One forwarding HTTP proxy for the AWS stand-in: latency, fault and counting modes in front of a moto server.

AWS_ENDPOINT_URL points at the proxy; the proxy forwards every request to the upstream server unless a
fault rule says otherwise. From each request it decodes the signing service and region (SigV4 credential
scope), the access key, the protocol and the operation (X-Amz-Target for JSON protocols, Action= for query
protocols, /operation/NAME for smithy-rpc-v2-cbor, and the botocore model's method + URI template for REST
protocols) and, once it has seen the AssumeRole call that minted the key, the account. The IAM action of a
request comes from the policy generator's table (audit_bedrock.policy.iam_action), the same one the audit
role's policy is built from.

Modes, all at once if wanted:
- latency: every request waits `latency_s` before it is forwarded;
- faults: `Rule`s throttle (each protocol's own error shape, which botocore's retry handler recognises),
  deny, drop the connection, stall past the read timeout or delay chosen requests, optionally only the first
  N attempts of a logical request;
- counting: requests by operation, account and account-region, HTTP status, repeated identical requests,
  peak concurrency and time spent upstream; `log` keeps every attempt as a `Seen`;
- answers: what moto cannot answer (`answers`, audit_bedrock.standin.evidence): cloudtrail:LookupEvents is
  answered here in AWS's wire shape and never forwarded, DescribeLogGroups gains deletionProtectionEnabled.

Run standalone (the benchmark does):  python -m audit_bedrock.standin.proxy --upstream URL --latency-ms 40
It prints "LISTENING <url>" once ready. Three control paths answer without forwarding:
  GET  /__proxy__/stats    -> JSON counts (Counts.snapshot)
  GET  /__proxy__/timeline -> [[seconds since reset, upstream seconds, account, operation], ...]
  POST /__proxy__/reset    -> zero the counters
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import re
import ssl
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from audit_bedrock.policy import iam_action
from audit_bedrock.standin.evidence import EvidenceAnswers

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN_RE = re.compile(r"arn:aws:iam::(\d{12}):role/")
_ASSUMED_KEY_RE = re.compile(r"<AccessKeyId>([^<]+)</AccessKeyId>")
_CALLER_RE = re.compile(r"<Account>(\d{12})</Account>")
_SECRET_RES = tuple(re.compile(f"<{tag}>([^<]+)</{tag}>") for tag in ("SecretAccessKey", "SessionToken"))
_CBOR_OP_RE = re.compile(r"^/service/[^/]+/operation/([^/?]+)")
# Hop-by-hop headers are not forwarded (RFC 9110 7.6.1); Content-Length is recomputed.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                         "upgrade", "content-length"})
CONTROL_PREFIX = "/__proxy__/"
# Caller-side services: counted per account but not per account-region.
GLOBAL_SERVICES = frozenset({"iam", "sts", "organizations"})

# SigV4 signing name -> the botocore services signed with it (the first is the IAM prefix's service).
SIGNING_SERVICES: dict[str, tuple[str, ...]] = {
    "monitoring": ("cloudwatch",),
    "bedrock": ("bedrock", "bedrock-agent", "bedrock-runtime", "bedrock-agent-runtime"),
    "email": ("ses", "sesv2"),
    "states": ("stepfunctions",),
}


def botocore_services(signing_name: str) -> tuple[str, ...]:
    """The botocore service names that sign with `signing_name`."""
    return SIGNING_SERVICES.get(signing_name, (signing_name,))


@dataclass(frozen=True)
class _Template:
    method: str
    regex: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    literal: int
    name: str
    deprecated: bool


@lru_cache(maxsize=64)
def _templates(service: str) -> dict[str, tuple[_Template, ...]]:
    """REST operations of a botocore service as (path regex, required query) templates, by HTTP method."""
    import botocore.exceptions
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return {}
    out: dict[str, list[_Template]] = {}
    for name in model.operation_names:
        op = model.operation_model(name)
        spec = op.http
        path, _, query = str(spec.get("requestUri", "/")).partition("?")
        pattern = ""
        literal = 0
        for part in re.split(r"(\{[^}]+\})", path):
            if part.startswith("{"):
                pattern += ".+" if part.endswith("+}") else "[^/]+"
            else:
                pattern += re.escape(part)
                literal += len(part)
        required: list[tuple[str, str | None]] = []
        for q in filter(None, query.split("&")):
            k, eq, v = q.partition("=")
            required.append((k, v if eq else None))
        method = str(spec.get("method", "GET"))
        out.setdefault(method, []).append(_Template(method, re.compile(f"^{pattern}/?$"), tuple(required),
                                                    literal, name, bool(op.deprecated)))
    return {m: tuple(ts) for m, ts in out.items()}


def load_rest_models(services: Iterable[str]) -> None:
    """Parse the REST operation templates of `services` now, rather than on the first request of each."""
    for service in services:
        _templates(service)


def rest_operation(services: Iterable[str], method: str, path: str, query: dict[str, list[str]]) -> tuple[str, str]:
    """(botocore service, operation) of a REST request, by the most specific matching URI template.

    Specificity: not deprecated (GetBucketLifecycleConfiguration, not GetBucketLifecycle), then the number of
    required query keys (sub-resources such as ?policy), then the literal length of the path. The first
    service with a matching template wins. ("?", "?") when nothing matches.
    """
    for service in services:
        best: tuple[tuple[int, int, int], str] | None = None
        for t in _templates(service).get(method, ()):
            if not t.regex.match(path):
                continue
            if not all(k in query and (v is None or v in query[k]) for k, v in t.query):
                continue
            score = (int(not t.deprecated), len(t.query), t.literal)
            if best is None or score > best[0]:
                best = (score, t.name)
        if best is not None:
            return service, best[1]
    return "?", "?"


@dataclass
class Request:
    """One request as the proxy understood it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    service: str = "?"  # the SigV4 signing name
    region: str = "?"
    access_key: str = ""
    protocol: str = "?"
    operation: str = "?"
    api: str = "?"  # the botocore service name
    account: str | None = None  # None: the caller's own keys (not minted by an AssumeRole seen here)
    role_account: str | None = None  # for sts:AssumeRole, the account of the role being assumed

    @property
    def action(self) -> str | None:
        """The IAM action that authorizes the request (None: no permission needed)."""
        return iam_action(self.api, self.operation)

    def key(self) -> str:
        """Identifies a logical request across retries (signature and dates excluded)."""
        h = hashlib.sha256()
        for part in (self.account or "caller", self.service, self.region, self.operation, self.method,
                     self.path, urllib.parse.urlencode(sorted(self.query.items()), doseq=True)):
            h.update(part.encode() + b"\0")
        h.update(self.body)
        return h.hexdigest()


def parse(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    """A Request from the raw request line target, lower-cased headers and body, classified."""
    parsed = urllib.parse.urlsplit(target)
    req = Request(method, parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True), headers, body)
    classify(req)
    return req


def classify(req: Request) -> None:
    """Fill in service, region, key, protocol, operation and botocore service from the raw request."""
    m = _CRED_RE.search(req.headers.get("authorization", ""))
    if m:
        req.access_key, req.region, req.service = m.group(1), m.group(2), m.group(3)
    services = botocore_services(req.service)
    req.api = services[0]
    target = req.headers.get("x-amz-target")
    cbor = _CBOR_OP_RE.match(req.path)
    if req.headers.get("smithy-protocol") == "rpc-v2-cbor" or cbor:
        req.protocol, req.operation = "rpc-v2-cbor", cbor.group(1) if cbor else "?"
    elif target:
        req.protocol, req.operation = "json", target.rsplit(".", 1)[-1]
    elif "x-www-form-urlencoded" in req.headers.get("content-type", "") or (
            req.method == "POST" and b"Action=" in req.body):
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))
        req.protocol = "ec2" if req.service == "ec2" else "query"
        req.operation = (form.get("Action") or ["?"])[0]
        if req.operation == "AssumeRole":
            am = _ROLE_ARN_RE.match((form.get("RoleArn") or [""])[0])
            req.role_account = am.group(1) if am else None
    else:
        if req.service == "s3" and req.path.startswith("/v20180820/"):
            services = ("s3control",)  # signed as s3 (S3 would take it for GetObject); moto routes it so too
        req.protocol = "rest-xml" if req.service == "s3" else "rest-json"
        api, req.operation = rest_operation(services, req.method, urllib.parse.unquote(req.path), req.query)
        req.api = api if api != "?" else req.api


# --- error replies ---

def _cbor_text(s: str) -> bytes:
    raw = s.encode()
    n = len(raw)
    if n < 24:
        head = bytes([0x60 | n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + raw


def _cbor_map(d: dict[str, str]) -> bytes:
    return bytes([0xA0 | len(d)]) + b"".join(_cbor_text(k) + _cbor_text(v) for k, v in d.items())


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    reason: str | None = None


def error_reply(req: Request, code: str, message: str, status: int) -> Reply:
    """An AWS error in the request's own protocol, the way the real service shapes it."""
    rid = "standin-proxy-0000"
    xml_msg = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if req.protocol == "query":
        body = (f'<ErrorResponse xmlns="https://{req.service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{xml_msg}</Message></Error><RequestId>{rid}</RequestId>"
                "</ErrorResponse>").encode()
        return Reply(status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body)
    if req.protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{xml_msg}</Message></Error></Errors>"
                f"<RequestID>{rid}</RequestID></Response>").encode()
        return Reply(status, {"Content-Type": "text/xml"}, body)
    if req.protocol == "rest-xml":
        body = b"" if req.method == "HEAD" else (
            f"<Error><Code>{code}</Code><Message>{xml_msg}</Message><RequestId>{rid}</RequestId></Error>").encode()
        return Reply(status, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body)
    if req.protocol == "rpc-v2-cbor":
        return Reply(status, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                              "x-amzn-RequestId": rid}, _cbor_map({"__type": code, "message": message}))
    if req.protocol == "json":
        return Reply(status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid},
                     json.dumps({"__type": code, "message": message}).encode())
    return Reply(status, {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:",
                          "x-amzn-RequestId": rid}, json.dumps({"message": message}).encode())


# (code, HTTP status) of a throttling error per protocol: what each service family really returns.
THROTTLE: dict[str, tuple[str, int]] = {
    "query": ("Throttling", 400),
    "ec2": ("RequestLimitExceeded", 503),
    "json": ("ThrottlingException", 400),
    "rest-json": ("ThrottlingException", 429),
    "rest-xml": ("SlowDown", 503),
    "rpc-v2-cbor": ("ThrottlingException", 400),
}
# (code, HTTP status) of an access-denied error per protocol.
DENY: dict[str, tuple[str, int]] = {
    "query": ("AccessDenied", 403),
    "ec2": ("UnauthorizedOperation", 403),
    "json": ("AccessDeniedException", 400),
    "rest-json": ("AccessDeniedException", 403),
    "rest-xml": ("AccessDenied", 403),
    "rpc-v2-cbor": ("AccessDeniedException", 403),
}


def throttle_reply(req: Request) -> Reply:
    code, status = THROTTLE.get(req.protocol, ("ThrottlingException", 400))
    return error_reply(req, code, "Rate exceeded", status)


def deny_reply(req: Request) -> Reply:
    code, status = DENY.get(req.protocol, ("AccessDeniedException", 403))
    # Like S3, say nothing about which permission was missing: the scanner must name it itself.
    return error_reply(req, code, "Access Denied", status)


# --- fault rules ---

Matcher = Callable[[Request], bool]
FAULTS = ("throttle", "deny", "drop", "stall", "delay")


@dataclass
class Rule:
    """When `match` accepts a request, apply `action`: throttle | deny | drop | stall | delay."""

    match: Matcher
    action: str
    fraction: float = 1.0  # throttle: share of attempts throttled
    seed: int = 0
    max_consecutive: int = 3  # throttle: never more than this many throttles of one logical request
    first_attempts: int | None = None  # any action: only the first N attempts of a logical request (transient)
    seconds: float = 0.0  # stall / delay: how long
    name: str = ""
    hits: int = 0

    def __post_init__(self) -> None:
        if self.action not in FAULTS:
            raise ValueError(f"unknown fault {self.action!r}; one of {', '.join(FAULTS)}")

    def throttles(self, req: Request, attempt: int) -> bool:
        if attempt >= self.max_consecutive:
            return False
        digest = hashlib.sha256(f"{self.seed}|{req.key()}|{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.fraction


def match(*, service: str | Iterable[str] | None = None, operation: str | Iterable[str] | None = None,
          region: str | None = None, account: str | None = None, action: str | None = None,
          assume_role_into: str | None = None) -> Matcher:
    """A matcher on any combination of the decoded request fields (all given fields must agree)."""
    services = {service} if isinstance(service, str) else set(service) if service is not None else None
    ops = {operation} if isinstance(operation, str) else set(operation) if operation is not None else None

    def ok(req: Request) -> bool:
        return ((services is None or req.service in services)
                and (ops is None or req.operation in ops)
                and (region is None or req.region == region)
                and (account is None or req.account == account)
                and (action is None or req.action == action)
                and (assume_role_into is None or (req.operation == "AssumeRole"
                                                  and req.role_account == assume_role_into)))
    return ok


@dataclass(frozen=True)
class Seen:
    """The log entry of one request attempt and what the proxy did with it."""

    service: str
    region: str
    operation: str
    protocol: str
    account: str | None
    outcome: str  # forwarded | answered | throttled | denied | dropped | stalled
    status: int
    method: str = "?"
    api: str = "?"

    @property
    def action(self) -> str | None:
        return iam_action(self.api, self.operation)


# --- counting ---

def _per_account(cells: Counter[tuple[str, str]], reduce: Callable[[list[int]], int]) -> dict[str, int]:
    """{account: reduce(its per-region call counts)}."""
    grouped: dict[str, list[int]] = {}
    for (account, _), n in cells.items():
        grouped.setdefault(account, []).append(n)
    return {account: reduce(ns) for account, ns in sorted(grouped.items())}


class Counts:
    """Thread-safe wire counters: by operation, account and account-region; repeats; concurrency."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.by_operation: Counter[str] = Counter()
            self.by_account: Counter[str] = Counter()
            self.by_account_region: Counter[tuple[str, str]] = Counter()
            self.fingerprints: Counter[str] = Counter()
            self.first_seen: dict[str, str] = {}
            self.status: Counter[int] = Counter()
            self.upstream_s: dict[str, float] = {}
            self.timeline: list[tuple[float, float, str, str]] = []
            self.in_flight = 0
            self.max_in_flight = 0
            self.started = time.monotonic()

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, req: Request, account: str, status: int, t_begin: float, upstream_s: float) -> None:
        name = f"{req.service}:{req.operation}"
        fp = req.key()
        with self.lock:
            self.in_flight -= 1
            self.requests += 1
            self.status[status] += 1
            self.by_operation[name] += 1
            self.upstream_s[name] = self.upstream_s.get(name, 0.0) + upstream_s
            self.fingerprints[fp] += 1
            if self.fingerprints[fp] == 1:
                self.first_seen[fp] = f"{name} {req.method} {req.path[:120]}"
            self.by_account[account] += 1
            self.timeline.append((t_begin - self.started, upstream_s, account, name))
            if req.region != "?" and req.service not in GLOBAL_SERVICES:
                self.by_account_region[(account, req.region)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            repeats = {self.first_seen[fp]: n for fp, n in self.fingerprints.items() if n > 1}
            return {
                "requests": self.requests,
                "by_operation": dict(sorted(self.by_operation.items())),
                "by_account": dict(sorted(self.by_account.items())),
                "account_regions": len(self.by_account_region),
                "by_account_region_calls": sorted(self.by_account_region.values()),
                # per account: its calls in all regions and in its busiest region (the bench's concurrent-region bound)
                "regional_calls_by_account": _per_account(self.by_account_region, sum),
                "longest_region_by_account": _per_account(self.by_account_region, max),
                "repeated_requests": sum(n - 1 for n in repeats.values()),
                "repeated_examples": dict(sorted(repeats.items(), key=lambda kv: -kv[1])[:20]),
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "max_in_flight": self.max_in_flight,
                "upstream_seconds": round(sum(self.upstream_s.values()), 3),
                "upstream_seconds_by_operation": {k: round(v, 3) for k, v in sorted(self.upstream_s.items())},
                "seconds": round(time.monotonic() - self.started, 3),
            }

    def timeline_rows(self) -> list[list[Any]]:
        with self.lock:
            return [[round(a, 4), round(b, 4), c, d] for a, b, c, d in self.timeline]


# --- the proxy ---

@dataclass
class Proxy:
    """A threaded forwarding proxy on 127.0.0.1; use as a context manager or call start()/stop()."""

    upstream: str
    latency_s: float = 0.0
    tls: tuple[str, str] | None = None  # (certificate, key) PEM files: serve HTTPS
    port: int = 0
    rules: list[Rule] = field(default_factory=list)
    log: list[Seen] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    key_accounts: dict[str, str] = field(default_factory=dict)  # keys minted by an AssumeRole seen here
    caller_accounts: dict[str, str] = field(default_factory=dict)  # keys whose GetCallerIdentity passed here
    assumed_secrets: list[str] = field(default_factory=list)
    # What moto cannot answer (cloudtrail:LookupEvents, LogGroup.deletionProtectionEnabled): answered or
    # amended here, in AWS's wire shape (audit_bedrock.standin.evidence); None forwards everything.
    answers: EvidenceAnswers | None = None
    # Called with every forwarded request and the upstream's reply as it came (before `answers` amends it):
    # the record-and-replay stand-in records its template this way (audit_bedrock.standin.replay).
    recorder: Callable[[Request, Reply], None] | None = None
    _attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bind(self) -> None:
        """Listen on 127.0.0.1 (TLS-wrapped when `tls`); serve_forever() or start() then serves."""
        self._server = _Server(self, ("127.0.0.1", self.port))
        if self.tls:  # terminate TLS like a real endpoint; the handshake runs in the connection's own thread
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)

    def start(self) -> None:
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin-proxy", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the standalone process)."""
        assert self._server is not None
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def seen(self, outcome: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.log if outcome is None or s.outcome == outcome]

    def operations(self) -> set[tuple[str, str]]:
        """Every (signing service, operation) that reached the proxy."""
        return {(s.service, s.operation) for s in self.seen()}

    # --- request handling (runs on the server's threads) ---

    def attribute(self, req: Request) -> None:
        with self._lock:
            req.account = self.key_accounts.get(req.access_key)

    def decide(self, req: Request) -> Rule | None:
        """The fault rule that applies to this attempt, if any (rules are tried in order)."""
        with self._lock:
            if not self.rules:
                return None
            k = req.key()
            attempt = self._attempts.get(k, 0)
            for rule in self.rules:
                if not rule.match(req):
                    continue
                if rule.action == "throttle" and not rule.throttles(req, attempt):
                    continue
                if rule.first_attempts is not None and attempt >= rule.first_attempts:
                    continue
                rule.hits += 1
                self._attempts[k] = attempt + 1  # consecutive faulted attempts of this logical request
                return rule
            self._attempts[k] = 0
            return None

    def record(self, req: Request, outcome: str, status: int) -> None:
        with self._lock:
            self.log.append(Seen(req.service, req.region, req.operation, req.protocol, req.account,
                                 outcome, status, req.method, req.api))

    def learn(self, req: Request, status: int, body: bytes) -> None:
        """Remember the account of keys minted by an AssumeRole (and the minted secrets) and of the caller."""
        if req.operation == "GetCallerIdentity" and status == 200:
            cm = _CALLER_RE.search(body.decode("utf-8", "replace"))
            if cm:
                with self._lock:
                    self.caller_accounts.setdefault(req.access_key, cm.group(1))
            return
        if req.operation != "AssumeRole" or req.role_account is None:
            return
        text = body.decode("utf-8", "replace")
        m = _ASSUMED_KEY_RE.search(text)
        with self._lock:
            if m:
                self.key_accounts[m.group(1)] = req.role_account
            for pattern in _SECRET_RES:
                sm = pattern.search(text)
                if sm:
                    self.assumed_secrets.append(sm.group(1))

    def billed_account(self, req: Request) -> str:
        """The account a request is counted for; AssumeRole is signed by the caller but paid for the target."""
        if req.operation == "AssumeRole" and req.role_account:
            return req.role_account
        with self._lock:
            return req.account or self.caller_accounts.get(req.access_key) or f"key:{req.access_key}"

    def wait(self, seconds: float) -> None:
        self._closing.wait(seconds)


class StandinServer(ThreadingHTTPServer):
    """The stand-ins' threaded HTTP server: a thread per connection, a deep accept queue for bench bursts."""

    daemon_threads = True
    request_queue_size = 256


class StandinHandler(BaseHTTPRequestHandler):
    """What every stand-in handler shares: kept-alive HTTP/1.1, no access log, and sending a Reply."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status, reply.reason)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k in reply.headers):
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)


class _Server(StandinServer):
    def __init__(self, owner: Proxy, listen: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(listen, _Handler)


class _Handler(StandinHandler):
    """Reads one request, applies latency and faults, forwards over a kept-alive upstream connection, records."""

    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.owner
        if self.path.startswith(CONTROL_PREFIX):
            self._control(proxy)
            return
        req = parse(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self._read_body())
        proxy.attribute(req)
        proxy.counts.begin()
        t_begin = time.monotonic()
        if proxy.latency_s > 0:
            proxy.wait(proxy.latency_s)
        rule = proxy.decide(req)
        upstream_s = 0.0
        if rule is not None and rule.action in ("drop", "stall"):
            proxy.record(req, "dropped" if rule.action == "drop" else "stalled", 0)
            if rule.action == "stall":
                proxy.wait(rule.seconds)
            proxy.counts.end(req, proxy.billed_account(req), 0, t_begin, 0.0)
            self.close_connection = True
            return
        if rule is not None and rule.action in ("throttle", "deny"):
            reply = throttle_reply(req) if rule.action == "throttle" else deny_reply(req)
            outcome = "throttled" if rule.action == "throttle" else "denied"
        else:
            if rule is not None:  # delay
                proxy.wait(rule.seconds)
            target = req.headers.get("x-amz-target", "")
            account = req.account or proxy.caller_accounts.get(req.access_key)
            answered = proxy.answers.answer(target, account, req.region, req.body) if proxy.answers else None
            if answered is not None:  # never forwarded (moto's server answers LookupEvents with HTTP 500)
                reply, outcome = Reply(*answered), "answered"
            else:
                t_up = time.monotonic()
                reply = self._forward(req)
                upstream_s = time.monotonic() - t_up
                proxy.learn(req, reply.status, reply.body)
                if proxy.recorder is not None:
                    proxy.recorder(req, reply)
                if proxy.answers is not None:
                    reply = Reply(reply.status, reply.headers,
                                  proxy.answers.amend(target, account, req.region, reply.status, reply.body),
                                  reply.reason)
                outcome = "forwarded"
        proxy.record(req, outcome, reply.status)
        proxy.counts.end(req, proxy.billed_account(req), reply.status, t_begin, upstream_s)
        self._send(reply)

    def _control(self, proxy: Proxy) -> None:
        if self.path == CONTROL_PREFIX + "stats":
            body = json.dumps(proxy.counts.snapshot()).encode()
        elif self.path == CONTROL_PREFIX + "timeline":
            body = json.dumps(proxy.counts.timeline_rows()).encode()
        elif self.path == CONTROL_PREFIX + "reset" and self.command == "POST":
            proxy.counts.reset()
            body = b"{}"
        else:
            self._send(Reply(404, {"Content-Type": "application/json"}, b"{}"))
            return
        self._send(Reply(200, {"Content-Type": "application/json"}, body))

    def _forward(self, req: Request) -> Reply:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(req.body))
        up = urllib.parse.urlsplit(self.server.owner.upstream)
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed by the server
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=120)
            try:
                self._upstream.request(req.method, self.path, body=req.body, headers=headers)
                resp = self._upstream.getresponse()
                body = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
        if req.method == "HEAD" and resp.getheader("Content-Length"):
            out["Content-Length"] = str(resp.getheader("Content-Length"))
        return Reply(resp.status, out, body, resp.reason)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def main(argv: list[str] | None = None) -> int:
    """The standalone proxy (latency and counting modes): prints LISTENING <url>, serves until interrupted."""
    p = argparse.ArgumentParser(prog="python -m audit_bedrock.standin.proxy",
                                description="A latency-injecting, counting HTTP proxy in front of a moto server.")
    p.add_argument("--upstream", required=True, help="where to forward, e.g. http://127.0.0.1:5000")
    p.add_argument("--latency-ms", type=float, default=40.0, help="wait before forwarding each request")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM) ...")
    p.add_argument("--tls-key", help="... and this key")
    p.add_argument("--backdate-ingestion", action="store_true",
                   help="DescribeLogStreams: lastIngestionTime := lastEventTimestamp (the benchmark's estate)")
    ns = p.parse_args(argv)
    if bool(ns.tls_cert) != bool(ns.tls_key):
        p.error("--tls-cert and --tls-key go together")
    # LookupEvents is answered (no event), never forwarded: moto's 500 would be retried, i.e. repeated.
    proxy = Proxy(ns.upstream, latency_s=ns.latency_ms / 1000.0, port=ns.port,
                  tls=(ns.tls_cert, ns.tls_key) if ns.tls_cert else None,
                  answers=EvidenceAnswers(backdate_ingestion=ns.backdate_ingestion))
    proxy.bind()
    print(f"LISTENING {proxy.url}", flush=True)
    proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
