"""A fault-injecting HTTP proxy for tests: forwards AWS API calls to a moto server and breaks chosen ones.

AWS_ENDPOINT_URL points at the proxy; the proxy forwards every request to the upstream moto server
unless a rule says otherwise. From each request it decodes the signing service and region (SigV4
credential scope), the access key, the operation (X-Amz-Target for JSON protocols, Action= for
query protocols, /operation/NAME for smithy-rpc-v2-cbor, and the botocore model's method + URI
template for REST protocols) and, once it has seen the AssumeRole call that minted the key, the
account. Rules then throttle (with each protocol's own error shape, which botocore's retry handler
recognises), deny, drop the connection or stall past the read timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN_RE = re.compile(r"arn:aws:iam::(\d{12}):role/")
_ASSUMED_KEY_RE = re.compile(r"<AccessKeyId>([^<]+)</AccessKeyId>")
_CBOR_OP_RE = re.compile(r"^/service/[^/]+/operation/([^/?]+)")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
               "upgrade", "content-length"}

# Signing names that are not botocore service names, and signing names shared by several services.
SERVICE_ALIASES: dict[str, tuple[str, ...]] = {
    "monitoring": ("cloudwatch",),
    "bedrock": ("bedrock", "bedrock-agent", "bedrock-runtime", "bedrock-agent-runtime"),
    "email": ("ses", "sesv2"),
    "states": ("stepfunctions",),
}

# IAM action prefix for each signing name when they differ.
IAM_PREFIX: dict[str, str] = {"monitoring": "cloudwatch"}
# Operations whose IAM action is not "<prefix>:<Operation>" (Service Authorization Reference).
ACTION_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "GetBucketLifecycle"): "s3:GetLifecycleConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "GetBucketObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "GetBucketLogging"): "s3:GetBucketLogging",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorizes `operation` of the service with signing name `service`."""
    return ACTION_EXCEPTIONS.get((service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")


def operations_for_action(action: str) -> set[tuple[str, str]]:
    """(signing service, operation) pairs authorized by `action`; the inverse of `iam_action`."""
    prefix, name = action.split(":", 1)
    service = next((s for s, p in IAM_PREFIX.items() if p == prefix), prefix)
    ops = {(s, op) for (s, op), act in ACTION_EXCEPTIONS.items() if act == action}
    if (service, name) not in ACTION_EXCEPTIONS:
        ops.add((service, name))
    return ops


@dataclass(frozen=True)
class _Template:
    method: str
    regex: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    literal: int
    name: str
    deprecated: bool


@lru_cache(maxsize=64)
def _templates(service: str) -> tuple[_Template, ...]:
    """REST operations of a botocore service as (method, path regex, required query) templates."""
    import botocore.exceptions
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return ()
    out = []
    for name in model.operation_names:
        op = model.operation_model(name)
        http = op.http
        uri = str(http.get("requestUri", "/"))
        path, _, query = uri.partition("?")
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
        out.append(_Template(str(http.get("method", "GET")), re.compile(f"^{pattern}/?$"), tuple(required),
                             literal, name, bool(op.deprecated)))
    return tuple(out)


def rest_operation(services: Iterable[str], method: str, path: str, query: dict[str, list[str]]) -> str:
    """The operation name of a REST request, by the most specific matching URI template."""
    best: tuple[int, int, int, str] | None = None
    for service in services:
        for t in _templates(service):
            if t.method != method or not t.regex.match(path):
                continue
            if not all(k in query and (v is None or v in query[k]) for k, v in t.query):
                continue
            score = (int(not t.deprecated), len(t.query), t.literal, t.name)  # GetBucketLifecycleConfiguration,
            if best is None or score[:3] > best[:3]:                         # not the deprecated GetBucketLifecycle
                best = score
        if best is not None:
            return best[3]
    return "?"


@dataclass
class Request:
    """One request as the proxy understood it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    service: str = "?"
    region: str = "?"
    access_key: str = ""
    protocol: str = "?"
    operation: str = "?"
    account: str | None = None  # None: the caller's own keys (not minted by an AssumeRole seen here)
    role_account: str | None = None  # for sts:AssumeRole, the account of the role being assumed

    @property
    def action(self) -> str:
        return iam_action(self.service, self.operation)

    def key(self) -> str:
        """Identifies a logical request across retries (signature and dates excluded)."""
        h = hashlib.sha256()
        for part in (self.account or "caller", self.service, self.region, self.operation, self.method,
                     self.path, urllib.parse.urlencode(sorted(self.query.items()), doseq=True)):
            h.update(part.encode() + b"\0")
        h.update(self.body)
        return h.hexdigest()


def classify(req: Request) -> None:
    """Fill in service, region, key, protocol and operation from the raw request."""
    auth = req.headers.get("authorization", "")
    m = _CRED_RE.search(auth)
    if m:
        req.access_key, req.region, req.service = m.group(1), m.group(2), m.group(3)
    ctype = req.headers.get("content-type", "")
    target = req.headers.get("x-amz-target")
    cbor = _CBOR_OP_RE.match(req.path)
    if req.headers.get("smithy-protocol") == "rpc-v2-cbor" or cbor:
        req.protocol, req.operation = "rpc-v2-cbor", cbor.group(1) if cbor else "?"
    elif target:
        req.protocol, req.operation = "json", target.rsplit(".", 1)[-1]
    elif "x-www-form-urlencoded" in ctype or (req.method == "POST" and b"Action=" in req.body):
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))
        req.protocol = "ec2" if req.service == "ec2" else "query"
        req.operation = (form.get("Action") or ["?"])[0]
        if req.operation == "AssumeRole":
            arn = (form.get("RoleArn") or [""])[0]
            am = _ROLE_ARN_RE.match(arn)
            req.role_account = am.group(1) if am else None
    else:
        req.protocol = "rest-xml" if req.service == "s3" else "rest-json"
        services = SERVICE_ALIASES.get(req.service, (req.service,))
        req.operation = rest_operation(services, req.method, urllib.parse.unquote(req.path), req.query)


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


def error_reply(req: Request, code: str, message: str, status: int) -> Reply:
    """An AWS error in the request's own protocol, the way the real service shapes it."""
    rid = "fault-proxy-0000"
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
    import json
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


Matcher = Callable[[Request], bool]


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

    @property
    def action(self) -> str:
        return iam_action(self.service, self.operation)


@dataclass
class FaultProxy:
    """A threaded forwarding proxy on 127.0.0.1; use as a context manager or call start()/stop()."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    # What moto cannot answer (LookupEvents, deletionProtectionEnabled): audit_bedrock.evidence_standin.
    answers: Any = None
    log: list[Seen] = field(default_factory=list)
    key_accounts: dict[str, str] = field(default_factory=dict)
    assumed_secrets: list[str] = field(default_factory=list)
    _attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

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

    def decide(self, req: Request) -> tuple[Rule | None, int]:
        with self._lock:
            if req.access_key in self.key_accounts:
                req.account = self.key_accounts[req.access_key]
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
                return rule, attempt
            self._attempts[k] = 0
            return None, attempt

    def record(self, req: Request, outcome: str, status: int) -> None:
        with self._lock:
            self.log.append(Seen(req.service, req.region, req.operation, req.protocol, req.account,
                                 outcome, status, req.method))

    def learn(self, req: Request, body: bytes) -> None:
        """Remember which account the keys minted by an AssumeRole belong to, and the minted secrets."""
        if req.operation != "AssumeRole" or req.role_account is None:
            return
        text = body.decode("utf-8", "replace")
        m = _ASSUMED_KEY_RE.search(text)
        with self._lock:
            if m:
                self.key_accounts[m.group(1)] = req.role_account
            for tag in ("SecretAccessKey", "SessionToken"):
                sm = re.search(f"<{tag}>([^<]+)</{tag}>", text)
                if sm:
                    self.assumed_secrets.append(sm.group(1))

    def wait(self, seconds: float) -> None:
        self._closing.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

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
        parsed = urllib.parse.urlsplit(self.path)
        req = Request(self.command, parsed.path, urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
                      {k.lower(): v for k, v in self.headers.items()}, self._read_body())
        classify(req)
        proxy = self.owner
        rule, _ = proxy.decide(req)
        if rule is not None and rule.action in ("drop", "stall"):
            if rule.action == "stall":
                proxy.wait(rule.seconds)
            proxy.record(req, "dropped" if rule.action == "drop" else "stalled", 0)
            self.close_connection = True
            return
        if rule is not None and rule.action in ("throttle", "deny"):
            reply = throttle_reply(req) if rule.action == "throttle" else deny_reply(req)
            proxy.record(req, "throttled" if rule.action == "throttle" else "denied", reply.status)
            self._send(reply)
            return
        if rule is not None and rule.action == "delay":
            proxy.wait(rule.seconds)
        target = req.headers.get("x-amz-target", "")
        answered = proxy.answers.answer(target, req.account, req.region, req.body) if proxy.answers else None
        if answered is not None:  # never forwarded: moto's server answers LookupEvents with HTTP 500
            proxy.record(req, "answered", answered[0])
            self._send(Reply(*answered))
            return
        reply = self._forward(req)
        if proxy.answers is not None:
            reply = Reply(reply.status, reply.headers,
                          proxy.answers.amend(target, req.account, req.region, reply.status, reply.body))
        proxy.learn(req, reply.body)
        proxy.record(req, "forwarded", reply.status)
        self._send(reply)

    def _forward(self, req: Request) -> Reply:
        up = urllib.parse.urlsplit(self.owner.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(req.body))
            conn.request(req.method, self.path, body=req.body, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
            if req.method == "HEAD" and resp.getheader("Content-Length"):
                out["Content-Length"] = str(resp.getheader("Content-Length"))
            return Reply(resp.status, out, body)
        finally:
            conn.close()

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if "Content-Length" not in reply.headers:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle



# --- helpers shared by the fault, read-only, security and determinism tests ---

DEMO_SCAN_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "me-south-1")  # me-south-1: not enabled in the demo


@dataclass(frozen=True)
class Estate:
    """A seeded moto server: its URL and the demo organization's account name -> id."""

    endpoint: str
    ids: dict[str, str]

    def name_of(self, account_id: str) -> str:
        return next(n for n, i in self.ids.items() if i == account_id)


@contextlib.contextmanager
def seeded_estate(seed: Callable[[str], dict[str, str]] | None = None) -> Iterator[Estate]:
    """A moto server in its own process on a free loopback port, seeded (default: the demo organization).

    Its own process, not ThreadedMotoServer: moto's backends are process globals, so two in-process
    servers (or one and a mock_aws test on the same xdist worker) would share, and collide on, state.
    """
    from audit_bedrock.demo import seed as demo_seed
    from tests.conftest import moto_process

    with moto_process() as url:
        yield Estate(url, (seed or demo_seed)(url))


_SHARED: dict[str, Estate] = {}


def shared_demo_estate(config: Any) -> Estate:
    """One seeded demo estate per test process, stopped when the session ends.

    Sharing is sound because scans only read (tests/test_readonly.py proves it).
    """
    if "demo" not in _SHARED:
        cm = seeded_estate()
        _SHARED["demo"] = cm.__enter__()

        def stop() -> None:
            _SHARED.pop("demo", None)
            cm.__exit__(None, None, None)

        config.add_cleanup(stop)
    return _SHARED["demo"]


def fast_retries(monkeypatch: Any, read_timeout: float | None = None) -> None:
    """Shrink botocore's retry waits for a test, keeping the product's mode and attempt count.

    Backoff delays are scaled down 100x and the adaptive token bucket's floor is raised from
    0.5 to 200 requests/s; the number of attempts (session.MAX_ATTEMPTS) is untouched.
    """
    import botocore.config
    import botocore.retries.bucket
    import botocore.retries.standard

    from audit_bedrock import session

    original = botocore.retries.standard.ExponentialBackoff.delay_amount

    def quick(self: Any, context: Any) -> float:
        return float(original(self, context)) / 100

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", quick)

    class FastBucket(botocore.retries.bucket.TokenBucket):  # type: ignore[misc]
        def __init__(self, max_rate: float, clock: Any, min_rate: float = 200.0) -> None:
            super().__init__(max_rate, clock, min_rate=min_rate)

    monkeypatch.setattr(botocore.retries.bucket, "TokenBucket", FastBucket)
    if read_timeout is not None:
        monkeypatch.setattr(session, "CLIENT_CONFIG", session.CLIENT_CONFIG.merge(
            botocore.config.Config(read_timeout=read_timeout, connect_timeout=read_timeout)))


@dataclass(frozen=True)
class CliRun:
    """The outcome of one in-process CLI run."""

    rc: int
    stdout: str
    doc: dict[str, Any] | None
    out_dir: Path

    def findings(self, account: str | None = None) -> list[dict[str, Any]]:
        assert self.doc is not None
        return [f for f in self.doc["findings"] if account is None or f["account_id"] == account]


def run_cli_inprocess(monkeypatch: Any, endpoint: str | None, args: list[str], out_dir: Path) -> CliRun:
    """Run audit_bedrock.cli.main(args) in this process with AWS_ENDPOINT_URL=endpoint."""
    import io
    import json

    from audit_bedrock.cli import main

    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([*args, "--output-dir", str(out_dir)])
    path = out_dir / "findings.json"
    doc = json.loads(path.read_text()) if path.exists() else None
    return CliRun(rc, buf.getvalue(), doc, out_dir)


def stable(doc: dict[str, Any]) -> dict[str, Any]:
    """A findings.json document without the fields that legitimately change between runs."""
    import copy

    out = copy.deepcopy(doc)
    for k in ("started_at", "finished_at"):
        out["scan"].pop(k, None)
    return out
