"""A latency-injecting HTTP forwarder for the benchmark: sleeps per request, counts calls on the wire, finds repeats.

Run standalone:  python bench/latency_proxy.py --upstream http://127.0.0.1:5000 --latency-ms 40 --port 0
It prints "LISTENING <url>" on stdout once ready. Two control paths answer without forwarding:
  GET  /__proxy__/stats  -> JSON counts (see Stats.snapshot)
  GET  /__proxy__/timeline -> [[seconds since reset, upstream seconds, account, operation], ...]
  POST /__proxy__/reset  -> zero the counters
Every request is classified by service (from the SigV4 credential scope), operation (X-Amz-Target, the Query
`Action`, or METHOD + path + sub-resources for REST protocols), account (learned from AssumeRole responses that
pass through) and a fingerprint of (access key, region, service, operation, method, path, query, body). Two
requests with the same fingerprint are a repeated identical request.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN = re.compile(r"RoleArn=arn%3Aaws%3Aiam%3A%3A(\d{12})%3Arole")
_KEY_ID = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
_CALLER = re.compile(rb"<Account>(\d{12})</Account>")
# Hop-by-hop headers are not forwarded (RFC 9110 7.6.1).
_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
                  "content-length"})


def classify(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str, str, str]:
    """(access key, region, service, operation) of one AWS request."""
    m = _SCOPE.search(headers.get("authorization", ""))
    key, region, service = (m.group(1), m.group(2), m.group(3)) if m else ("anonymous", "", "unknown")
    target = headers.get("x-amz-target")
    if target:
        return key, region, service, target.rsplit(".", 1)[-1]
    if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return key, region, service, action[0]
    parsed = urllib.parse.urlsplit(path)
    subresources = sorted(k for k, _ in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
                          if k not in ("list-type", "encoding-type", "max-keys", "prefix", "delimiter"))
    if service == "s3":  # path-style: /bucket[/key]; the bucket name is not part of the operation
        depth = "object" if parsed.path.strip("/").count("/") else ("bucket" if parsed.path.strip("/") else "service")
        return key, region, service, f"{method} {depth}" + ("?" + "&".join(subresources) if subresources else "")
    return key, region, service, f"{method} {parsed.path}"


class Stats:
    """Thread-safe request counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.requests = 0
            self.by_operation: Counter[str] = Counter()
            self.by_account: Counter[str] = Counter()
            self.by_account_region: Counter[tuple[str, str]] = Counter()
            self.fingerprints: Counter[bytes] = Counter()
            self.first_seen: dict[bytes, str] = {}
            self.key_account: dict[str, str] = {}
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

    def record(self, method: str, path: str, headers: dict[str, str], body: bytes, status: int,
               response: bytes, t_begin: float, upstream_s: float) -> None:
        key, region, service, op = classify(method, path, headers, body)
        fp = hashlib.blake2b(b"\0".join([key.encode(), region.encode(), service.encode(), op.encode(),
                                         method.encode(), path.encode(), body]), digest_size=16).digest()
        learned: tuple[str, str] | None = None
        if service == "sts" and op == "AssumeRole" and status == 200:
            km, am = _KEY_ID.search(response), _ROLE_ARN.search(body.decode("utf-8", "replace"))
            if km and am:
                learned = (km.group(1).decode(), am.group(1))
        elif service == "sts" and op == "GetCallerIdentity" and status == 200:
            cm = _CALLER.search(response)
            if cm:
                learned = (key, cm.group(1).decode())
        with self.lock:
            self.in_flight -= 1
            self.requests += 1
            self.status[status] += 1
            name = f"{service}:{op}"
            self.by_operation[name] += 1
            self.upstream_s[name] = self.upstream_s.get(name, 0.0) + upstream_s
            self.fingerprints[fp] += 1
            if self.fingerprints[fp] == 1:
                self.first_seen[fp] = f"{name} {method} {path[:120]}"
            if learned:
                self.key_account.setdefault(learned[0], learned[1])
            # AssumeRole is paid for the member account but signed by the caller: count it for the target.
            account = (learned[1] if learned and op == "AssumeRole"
                       else self.key_account.get(key, f"key:{key}"))
            self.by_account[account] += 1
            self.timeline.append((t_begin - self.started, upstream_s, account, name))
            if region and service not in ("iam", "sts", "organizations"):
                self.by_account_region[(account, region)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            repeats = {self.first_seen[fp]: n for fp, n in self.fingerprints.items() if n > 1}
            return {
                "requests": self.requests,
                "by_operation": dict(sorted(self.by_operation.items())),
                "by_account": dict(sorted(self.by_account.items())),
                "account_regions": len(self.by_account_region),
                "by_account_region_calls": sorted(self.by_account_region.values()),
                "repeated_requests": sum(n - 1 for n in repeats.values()),
                "repeated_examples": dict(sorted(repeats.items(), key=lambda kv: -kv[1])[:20]),
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "max_in_flight": self.max_in_flight,
                "upstream_seconds": round(sum(self.upstream_s.values()), 3),
                "upstream_seconds_by_operation": {k: round(v, 3) for k, v in sorted(self.upstream_s.items())},
                "seconds": round(time.monotonic() - self.started, 3),
            }


class Proxy(ThreadingHTTPServer):
    """The forwarding server: one thread per client connection, one upstream connection per thread."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, listen: tuple[str, int], upstream: str, latency_s: float,
                 tls: tuple[str, str] | None = None) -> None:
        super().__init__(listen, Handler)
        self.scheme = "http"
        if tls:  # terminate TLS like a real endpoint; the handshake runs in the connection's own thread
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            self.scheme = "https"
        u = urllib.parse.urlsplit(upstream)
        self.upstream_host = u.hostname or "127.0.0.1"
        self.upstream_port = u.port or 80
        self.latency_s = latency_s
        self.stats = Stats()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    """Sleeps, forwards one request upstream over a kept-alive connection, records it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server: Proxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        if self.path.startswith("/__proxy__/"):
            if self.path == "/__proxy__/stats":
                self._reply(200, json.dumps(self.server.stats.snapshot()).encode())
            elif self.path == "/__proxy__/timeline":
                with self.server.stats.lock:
                    rows = [[round(a, 4), round(b, 4), c, d] for a, b, c, d in self.server.stats.timeline]
                self._reply(200, json.dumps(rows).encode())
            elif self.path == "/__proxy__/reset" and self.command == "POST":
                self.server.stats.reset()
                self._reply(200, b"{}")
            else:
                self._reply(404, b"{}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.stats.begin()
        t_begin = time.monotonic()
        if self.server.latency_s > 0:
            time.sleep(self.server.latency_s)
        fwd = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        t_up = time.monotonic()
        status, reason, rheaders, data = self._upstream_call(body, fwd)
        self.server.stats.record(self.command, self.path, headers, body, status, data, t_begin,
                                 time.monotonic() - t_up)
        self.send_response(status, reason)
        for k, v in rheaders:
            if k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _upstream_call(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port,
                                                            timeout=120)
            try:
                self._upstream.request(self.command, self.path, body=body or None, headers=headers)
                resp = self._upstream.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (ConnectionError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward


def serve(upstream: str, latency_ms: float, host: str = "127.0.0.1", port: int = 0) -> Proxy:
    """Start a proxy in a background thread and return it (call .shutdown() to stop)."""
    proxy = Proxy((host, port), upstream, latency_ms / 1000.0)
    threading.Thread(target=proxy.serve_forever, name="latency-proxy", daemon=True).start()
    return proxy


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="where to forward, e.g. http://127.0.0.1:5000")
    p.add_argument("--latency-ms", type=float, default=40.0, help="sleep before forwarding each request")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM) ...")
    p.add_argument("--tls-key", help="... and this key")
    ns = p.parse_args(argv)
    if ns.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("the proxy listens on loopback only")
    if bool(ns.tls_cert) != bool(ns.tls_key):
        p.error("--tls-cert and --tls-key go together")
    tls = (ns.tls_cert, ns.tls_key) if ns.tls_cert else None
    proxy = Proxy((ns.host, ns.port), ns.upstream, ns.latency_ms / 1000.0, tls)
    print(f"LISTENING {proxy.url}", flush=True)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
