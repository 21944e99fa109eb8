"""A record-and-replay AWS stand-in: moto's answers for a small template organization, served for N accounts."""

# How it works.
#
# Record: moto holds a template organization, seed_bench(n=8): the management account and one member per bench
# profile. One scan of it passes through the stand-in proxy, whose `recorder` stores, for every forwarded
# request, (account, signing service, region, method, path, query, body) -> (status, headers, body) as moto
# answered. The account is the one the request's SigV4 access key acts for: the proxy learns it from the
# AssumeRole answer that minted the key; the caller's own keys act for the management account.
#
# Replay: a ThreadingHTTPServer on 127.0.0.1 serves an organization laid out as seed_bench(n) lays it out
# (names, OUs, profile i % 7). A request signed for member X is answered from the recording of X's template
# t(X), the member of the template with X's profile: the request's ids are rewritten to the template's
# before the look-up, the answer's ids back to X's (account ids, and the names that contain them, such as
# buckets). STS AssumeRole into X mints an access key that spells X (ASIA + X + RPLY), so every later request
# says whom it acts for. The Organizations reads that list the organization (ListAccountsForParent,
# ListOrganizationalUnitsForParent, ListAccounts, ListParents, DescribeAccount) are answered from the layout
# in moto's JSON (moto/organizations/responses.py) with moto's page sizes (moto/organizations/utils.py
# PAGINATION_MODEL). The other caller-side reads, ListRoots, DescribeOrganization and the SCP reads
# (ListPolicies, DescribePolicy, ListTargetsForPolicy), are the template management account's recorded
# answers with the ids rewritten: the bench attaches its SCPs to OUs only (estate.BENCH_SCPS), so their
# targets map to the layout's OUs whatever N is; policy ids stay the template's. A request the recording does
# not hold is answered HTTP 500 and logged: nothing is made up.

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import re
import sys
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit_bedrock.standin.estate import BENCH_OUS, BENCH_PROFILES, bench_ou, bench_profile
from audit_bedrock.standin.proxy import (
    Reply,
    Request,
    StandinHandler,
    StandinServer,
    error_reply,
    load_rest_models,
    parse,
)

TEMPLATE_ACCOUNTS = 1 + len(BENCH_PROFILES)  # seed_bench(8): the management account and one member per profile
CONTROL_PREFIX = "/__replay__/"
# Response headers not replayed: per-connection or per-moment ones (Content-Length is recomputed, but kept
# for HEAD, which has no body to count).
_SKIP_HEADERS = frozenset({"date", "server", "connection", "keep-alive", "transfer-encoding", "te", "trailer",
                           "upgrade", "proxy-connection"})
# The request parameters that carry the current time: left out of the look-up key. The template's answers
# hold the Invocations the bench seeds two days before the recording (estate.bench_used_at), and a replay
# runs minutes or hours after its recording, in the same run set: those points stay inside any window the
# scan asks for (the lookback, at most 14 days) for days, and the day of use, which later requests (the
# delivered-object listing's StartAfter) are derived from, does not move. Nothing in the bench's requests
# derives from the current day itself (no S3 destination that received nothing, whose second listing starts
# at the window's first day).
TIME_PARAMS: dict[str, frozenset[str]] = {
    "GetMetricData": frozenset({"StartTime", "EndTime"}),
    "GetMetricStatistics": frozenset({"StartTime", "EndTime"}),
}
# Every id moto gives an account, organization, root or OU (moto/organizations/utils.py *_REGEX).
_ID_RE = re.compile(rb"(?<![0-9])[0-9]{12}(?![0-9])|o-[a-z0-9]{10}|r-[a-z0-9]{4}|ou-[a-z0-9]{4}-[a-z0-9]{8}")
_KEY_RE = re.compile(r"^ASIA([0-9]{12})RPLY$")
_ACCESS_KEY_RE = re.compile(rb"<AccessKeyId>[^<]*</AccessKeyId>")
_EXPIRATION_RE = re.compile(rb"<Expiration>[^<]*</Expiration>")
# moto's Organizations page sizes (moto/organizations/utils.py PAGINATION_MODEL limit_default).
PAGE_SIZE = {"ListAccounts": 100, "ListAccountsForParent": 20, "ListOrganizationalUnitsForParent": 20}
SYNTHESIZED = frozenset({"ListAccounts", "ListAccountsForParent", "ListOrganizationalUnitsForParent",
                         "ListParents", "DescribeAccount"})
REST_SERVICES = ("s3", "s3control", "bedrock")  # the REST protocols a scan speaks (proxy.rest_operation)
DEFAULT_CALLER_KEYS = frozenset({"bench"})  # bench/run.py's and seed_bench's caller credentials


def access_key_for(account: str) -> str:
    """The temporary access key the replay mints for `account` (20 characters, like AWS's ASIA keys)."""
    return f"ASIA{account}RPLY"


def account_of_key(access_key: str) -> str | None:
    """The account a replay-minted access key acts for; None for any other key."""
    m = _KEY_RE.match(access_key)
    return m.group(1) if m else None


def _canonical_body(req: Request) -> bytes:
    drop = TIME_PARAMS.get(req.operation, frozenset())
    ctype = req.headers.get("content-type", "")
    if "x-www-form-urlencoded" in ctype:
        pairs = urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        return urllib.parse.urlencode(sorted(p for p in pairs if p[0] not in drop)).encode()
    if req.protocol == "json" and req.body:
        doc = json.loads(req.body)
        if isinstance(doc, dict):
            doc = {k: v for k, v in doc.items() if k not in drop}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    if req.protocol == "rpc-v2-cbor" and drop:
        raise ValueError(f"{req.operation} in CBOR: its time parameters cannot be left out of the key")
    return req.body


def request_key(account: str, req: Request) -> str:
    """The look-up key of a request acting for `account`: what the caller asked, without signature or clock."""
    query = urllib.parse.urlencode(sorted((k, v) for k, vs in req.query.items() for v in vs))
    h = hashlib.sha256()
    for part in (account, req.service, req.region, req.operation, req.method, req.path, query):
        h.update(part.encode() + b"\0")
    h.update(_canonical_body(req))
    return h.hexdigest()


def _describe(account: str, req: Request) -> str:
    return f"{account} {req.service}:{req.operation} {req.region} {req.method} {req.path}"


@dataclass(frozen=True)
class Answer:
    """One recorded answer: status, the headers that matter, and the body as moto sent it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass
class Recording:
    """The template organization and moto's answers to one scan of it, by request_key."""

    management: str
    organization_id: str
    templates: dict[str, str]  # bench profile -> the template member with it
    answers: dict[str, Answer] = field(default_factory=dict)
    described: dict[str, str] = field(default_factory=dict)  # request_key -> what it was (for the logs)
    variants: int = 0  # identical requests that moto answered differently (request ids); the first is kept
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, req: Request, reply: Reply, account: str) -> None:
        """Keep moto's answer to `req` (acting for `account`) unless the same request was answered before."""
        key = request_key(account, req)
        headers = tuple((k, v) for k, v in reply.headers.items() if k.lower() not in _SKIP_HEADERS
                        and (k.lower() != "content-length" or req.method == "HEAD"))
        answer = Answer(reply.status, headers, reply.body)
        with self._lock:
            old = self.answers.setdefault(key, answer)
            self.described.setdefault(key, _describe(account, req))
            if old != answer:
                self.variants += 1

    def recorder(self) -> Callable[[Request, Reply], None]:
        """A Proxy.recorder: the account is the proxy's (AssumeRole-learnt) one, else the management's."""
        def hook(req: Request, reply: Reply) -> None:
            self.record(req, reply, req.account or self.management)
        return hook

    def bodies(self, service: str, operation: str) -> list[dict[str, Any]]:
        """The JSON bodies of the recorded 200 answers to `service`:`operation` (json protocol)."""
        out = []
        for key, answer in self.answers.items():
            desc = self.described.get(key, "")
            if f" {service}:{operation} " in desc and answer.status == 200:
                out.append(json.loads(answer.body))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"management": self.management, "organization_id": self.organization_id,
                "templates": self.templates, "variants": self.variants,
                "answers": {k: {"status": a.status, "headers": [list(h) for h in a.headers],
                                "body": base64.b64encode(a.body).decode(), "request": self.described.get(k, "")}
                            for k, a in sorted(self.answers.items())}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Recording:
        rec = cls(doc["management"], doc["organization_id"], dict(doc["templates"]), variants=doc["variants"])
        for k, a in doc["answers"].items():
            rec.answers[k] = Answer(a["status"], tuple((h[0], h[1]) for h in a["headers"]),
                                    base64.b64decode(a["body"]))
            rec.described[k] = a["request"]
        return rec

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> Recording:
        return cls.from_json(json.loads(path.read_text()))


@dataclass(frozen=True)
class Member:
    """One account of the replayed organization."""

    id: str
    name: str
    email: str
    parent: str  # the id of its root or OU
    template: str  # the template account whose recording answers for it


@dataclass(frozen=True)
class Layout:
    """The replayed organization: ids, OUs (name, id) in creation order, members (the management account first)."""

    organization_id: str
    root: str
    ous: tuple[tuple[str, str], ...]
    members: tuple[Member, ...]

    @property
    def management(self) -> str:
        return self.members[0].id


def template_org(rec: Recording) -> tuple[str, dict[str, str], dict[str, dict[str, Any]]]:
    """The template organization as the recording saw it: (root id, OU name -> id, account id -> moto's Account)."""
    roots = [r for body in rec.bodies("organizations", "ListRoots") for r in body.get("Roots") or []]
    if not roots:
        raise ValueError("the recording holds no ListRoots answer")
    ous = {ou["Name"]: ou["Id"] for body in rec.bodies("organizations", "ListOrganizationalUnitsForParent")
           for ou in body.get("OrganizationalUnits") or []}
    accounts = {a["Id"]: a for op in ("ListAccountsForParent", "ListAccounts")
                for body in rec.bodies("organizations", op) for a in body.get("Accounts") or []}
    return str(roots[0]["Id"]), ous, accounts


def bench_layout(rec: Recording, n: int, first_id: int = 100_000_000_000) -> Layout:
    """seed_bench(n)'s organization (names, OUs, profiles) with deterministic member ids first_id + i, in the
    template's organization, root and OUs."""
    root, ous, accounts = template_org(rec)
    mgmt = accounts[rec.management]
    members = [Member(rec.management, mgmt["Name"], mgmt["Email"], root, rec.management)]
    for i in range(1, n):
        name = f"bench-{i:05d}"
        members.append(Member(f"{first_id + i:012d}", name, f"{name}@example.com", ous[bench_ou(i)],
                              rec.templates[bench_profile(i)]))
    return Layout(rec.organization_id, root, tuple((k, ous[k]) for k in BENCH_OUS), tuple(members))


def organization_layout(org: Any, rec: Recording) -> Layout:
    """The layout of a bench organization that exists (e.g. seed_bench in moto), read with an Organizations
    client of its management account; members are matched to templates by their bench-NNNNN name."""
    org_id = str(org.describe_organization()["Organization"]["Id"])
    management = str(org.describe_organization()["Organization"]["MasterAccountId"])
    root = str(org.list_roots()["Roots"][0]["Id"])
    ous = [(str(o["Name"]), str(o["Id"])) for page in org.get_paginator("list_organizational_units_for_parent")
           .paginate(ParentId=root) for o in page["OrganizationalUnits"]]
    members: list[Member] = []
    for parent in [root, *(i for _, i in ous)]:
        for page in org.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
            for a in page["Accounts"]:
                name = str(a["Name"])
                template = rec.management if a["Id"] == management else rec.templates[
                    bench_profile(int(name.removeprefix("bench-")))]
                members.append(Member(str(a["Id"]), name, str(a["Email"]), parent, template))
    members.sort(key=lambda m: m.id != management)  # the management account first, else moto's order
    return Layout(org_id, root, tuple(ous), tuple(members))


class Replay:
    """Answers for one Layout from one Recording; thread-safe, and CPU-cheap: look-ups and byte rewrites."""

    def __init__(self, rec: Recording, layout: Layout, *, caller_keys: Iterable[str] = DEFAULT_CALLER_KEYS,
                 clock: Callable[[], dt.datetime] | None = None, journal: bool = False) -> None:
        self.rec = rec
        # with `journal`, every answer as (status, body), in the order given: what a determinism check compares
        self.journal: list[tuple[int, bytes]] | None = [] if journal else None
        self.layout = layout
        self.caller_keys = frozenset(caller_keys)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        root, ous, accounts = template_org(rec)
        if {o for o, _ in layout.ous} != set(ous):
            raise ValueError(f"the layout's OUs {[o for o, _ in layout.ous]} are not the template's {sorted(ous)}")
        self.members = {m.id: m for m in layout.members}
        # template value -> layout value, for ids other than member accounts
        self.base: dict[bytes, bytes] = {rec.organization_id.encode(): layout.organization_id.encode(),
                                         root.encode(): layout.root.encode(),
                                         rec.management.encode(): layout.management.encode()}
        self.base.update({ous[name].encode(): ou.encode() for name, ou in layout.ous})
        template_ids = {*accounts, *(k.decode() for k in self.base)}
        clash = sorted(m.id for m in layout.members[1:] if m.id in template_ids)
        if clash:
            raise ValueError(f"member ids {clash[:5]} are also template ids")
        self.inverse = {v: k for k, v in self.base.items()}
        on_accounts = sorted({t.get("TargetId", "?") for body in rec.bodies("organizations", "ListTargetsForPolicy")
                              for t in body.get("Targets") or [] if t.get("Type") == "ACCOUNT"})
        if on_accounts:  # an account target would not map to the layout's members: refuse, never answer wrong
            raise ValueError(f"the recording attaches SCPs to accounts {on_accounts[:5]}: only the root and OUs "
                             "map through a layout")
        self.stats: Counter[str] = Counter()
        self.misses: list[str] = []
        self._lock = threading.Lock()
        self._accounts = {m.id: self._account_object(m, accounts[m.template]) for m in layout.members}
        self._ou_objects = self._ou_list(rec)

    # --- id rewriting ---

    def to_layout(self, body: bytes, member: str) -> bytes:
        """Template ids in `body` -> the layout's, the member's template -> `member`."""
        mapping = {**self.base, self.members[member].template.encode(): member.encode()}
        return _ID_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), body)

    def to_template(self, data: bytes, member: str) -> bytes:
        """The layout's ids in `data` -> the template's, `member` -> its template."""
        own, template = member.encode(), self.members[member].template.encode()

        def sub(m: re.Match[bytes]) -> bytes:
            v = m.group(0)
            return template if v == own else self.inverse.get(v, v)
        return _ID_RE.sub(sub, data)

    def _account_object(self, m: Member, template: Mapping[str, Any]) -> dict[str, Any]:
        raw = json.dumps({**template, "Name": m.name, "Email": m.email}).encode()
        obj: dict[str, Any] = json.loads(self.to_layout(raw, m.id))
        obj["Id"] = m.id
        return obj

    def _ou_list(self, rec: Recording) -> list[dict[str, Any]]:
        recorded = {ou["Name"]: ou for body in rec.bodies("organizations", "ListOrganizationalUnitsForParent")
                    for ou in body.get("OrganizationalUnits") or []}
        out = []
        for name, _ in self.layout.ous:
            out.append(json.loads(self.to_layout(json.dumps(recorded[name]).encode(), self.layout.management)))
        return out

    # --- answering ---

    def account_of(self, req: Request) -> str | None:
        """The account a request acts for, from its SigV4 access key: a minted key spells it; the caller's
        keys act for the management account; None for any other key."""
        if req.access_key in self.caller_keys:
            return self.layout.management
        account = account_of_key(req.access_key)
        return account if account in self.members else None

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """The reply to one raw request (target: path and query as sent)."""
        reply = self._answer(method, target, headers, body)
        if self.journal is not None:
            with self._lock:
                self.journal.append((reply.status, reply.body))
        return reply

    def _answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        req = parse(method, target, dict(headers), body)
        account = self.account_of(req)
        if account is None:
            self._count("unknown-key")
            return error_reply(req, "InvalidClientTokenId", "The security token included in the request is invalid.",
                               403)
        if req.service == "organizations" and req.operation in SYNTHESIZED:
            self._count("organizations")
            return self._organizations(req)
        acting = account
        if req.operation == "AssumeRole" and req.service == "sts":
            if req.role_account not in self.members:
                return self._miss(req, account, f"AssumeRole into {req.role_account}, not in the organization")
            acting = req.role_account  # its template's AssumeRole was recorded with the template's role ARN
        member = self.members[acting]
        # the caller-side request (AssumeRole) is looked up as the management account's, with the target's ids
        label = self.members[account].template
        raw_target = self.to_template(target.encode(), acting).decode()
        treq = parse(method, raw_target, dict(headers), self.to_template(body, acting))
        treq.service, treq.region = req.service, req.region
        key = request_key(label, treq)
        recorded = self.rec.answers.get(key)
        if recorded is None:
            return self._miss(req, account, _describe(label, treq))
        out = self.to_layout(recorded.body, member.id)
        if req.operation == "AssumeRole":
            out = self._minted(out, member.id, treq)
        self._count("replayed")
        hdrs = {k: v for k, v in recorded.headers}
        return Reply(recorded.status, hdrs, out)

    def _minted(self, body: bytes, account: str, req: Request) -> bytes:
        form = urllib.parse.parse_qs(req.body.decode())
        seconds = int((form.get("DurationSeconds") or ["3600"])[0])
        expires = (self.clock() + dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expires.microsecond // 1000:03d}Z"
        body = _ACCESS_KEY_RE.sub(f"<AccessKeyId>{access_key_for(account)}</AccessKeyId>".encode(), body)
        return _EXPIRATION_RE.sub(f"<Expiration>{stamp}</Expiration>".encode(), body)

    def _miss(self, req: Request, account: str, what: str) -> Reply:
        msg = f"replay: no recorded answer for {what} (acting for {account})"
        print(msg, file=sys.stderr, flush=True)
        with self._lock:
            self.stats["missed"] += 1
            if len(self.misses) < 50:
                self.misses.append(what)
        return error_reply(req, "InternalFailure", msg, 500)

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def _organizations(self, req: Request) -> Reply:
        params: dict[str, Any] = json.loads(req.body or b"{}")
        op = req.operation
        doc: dict[str, Any]
        if op == "DescribeAccount":
            acct = self._accounts.get(str(params.get("AccountId")))
            if acct is None:
                return error_reply(req, "AccountNotFoundException",
                                   "You specified an account that doesn't exist.", 400)
            doc = {"Account": acct}
        elif op == "ListParents":
            child = str(params.get("ChildId"))
            m = self.members.get(child)
            ou = {i for _, i in self.layout.ous}
            if m is None and child not in ou:
                return self._miss(req, self.layout.management, f"organizations:ListParents {child}")
            parent = m.parent if m is not None else self.layout.root
            doc = {"Parents": [{"Id": parent, "Type": "ROOT" if parent == self.layout.root
                                else "ORGANIZATIONAL_UNIT"}]}
        else:
            if op == "ListAccounts":
                items: list[dict[str, Any]] = [self._accounts[m.id] for m in self.layout.members]
                key = "Accounts"
            elif op == "ListAccountsForParent":
                wanted = params.get("ParentId")
                items = [self._accounts[m.id] for m in self.layout.members if m.parent == wanted]
                key = "Accounts"
            else:
                if params.get("ParentId") != self.layout.root:
                    items = []  # the bench's OUs are all directly under the root, none nested
                else:
                    items = self._ou_objects
                key = "OrganizationalUnits"
            size = int(params.get("MaxResults") or PAGE_SIZE[op])
            start = int(str(params.get("NextToken") or "replay-0").removeprefix("replay-"))
            page = items[start:start + size]
            more = start + size < len(items)
            doc = {key: page, "NextToken": f"replay-{start + size}" if more else None}
        return Reply(200, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "replay-0000"},
                     json.dumps(doc).encode())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"stats": dict(self.stats), "misses": list(self.misses), "accounts": len(self.members),
                    "recorded": len(self.rec.answers)}


class _Server(StandinServer):
    def __init__(self, replay: Replay, listen: tuple[str, int]) -> None:
        self.replay = replay
        super().__init__(listen, _Handler)


class _Handler(StandinHandler):
    """Answers one request from the Replay (or its stats under CONTROL_PREFIX)."""

    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith(CONTROL_PREFIX):
            doc = self.server.replay.snapshot() if self.path == CONTROL_PREFIX + "stats" else None
            self._send(Reply(200 if doc is not None else 404, {"Content-Type": "application/json"},
                             json.dumps(doc or {}).encode()))
            return
        try:
            reply = self.server.replay.answer(self.command, self.path,
                                              {k.lower(): v for k, v in self.headers.items()}, body)
        except (ValueError, KeyError) as exc:  # a request the replay cannot read: loud, never a made-up answer
            print(f"replay: {self.command} {self.path}: {exc!r}", file=sys.stderr, flush=True)
            self.server.replay._count("missed")
            reply = Reply(500, {"Content-Type": "text/plain"}, f"replay: {exc!r}".encode())
        self._send(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


@dataclass
class ReplayServer:
    """A Replay served over HTTP on 127.0.0.1; a context manager."""

    replay: Replay
    port: int = 0
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ReplayServer:
        self._server = _Server(self.replay, ("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin-replay", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)


def record_bench(scan: Callable[[str, Sequence[str]], None], region_sets: Iterable[Sequence[str]],
                 env: Mapping[str, str] | None = None, used: dt.datetime | None = None) -> Recording:
    """Seed seed_bench(TEMPLATE_ACCOUNTS) into a fresh moto subprocess and record `scan(url, regions)` of it
    through the stand-in proxy, once per region set (`used`: when its Bedrock was invoked, as seed_bench)."""
    from audit_bedrock.standin import server
    from audit_bedrock.standin.estate import seed_bench
    from audit_bedrock.standin.evidence import EvidenceAnswers
    from audit_bedrock.standin.proxy import Proxy

    with server.process(key_index=True, env=env) as moto:
        seeded = seed_bench(moto.url, TEMPLATE_ACCOUNTS, workers=1, used=used)
        templates = {bench_profile(int(name.removeprefix("bench-"))): acct
                     for name, acct in seeded["accounts"].items() if name != "management"}
        rec = Recording(seeded["management"], seeded["organization_id"], templates)
        with Proxy(moto.url, answers=EvidenceAnswers(backdate_ingestion=True), recorder=rec.recorder()) as proxy:
            for regions in region_sets:
                scan(proxy.url, regions)
    return rec


def main(argv: list[str] | None = None) -> int:
    """Serve a recording for a bench organization of N accounts: prints LISTENING <url>, serves until killed."""
    p = argparse.ArgumentParser(prog="python -m audit_bedrock.standin.replay", description=__doc__)
    p.add_argument("--recording", type=Path, required=True, help="a Recording saved as JSON")
    p.add_argument("--accounts", type=int, required=True, help="accounts, the management account included")
    p.add_argument("--port", type=int, default=0)
    ns = p.parse_args(argv)
    rec = Recording.load(ns.recording)
    srv = ReplayServer(Replay(rec, bench_layout(rec, ns.accounts)), ns.port)
    load_rest_models(REST_SERVICES)  # before serving, not on the first timed calls
    with srv:
        print(f"LISTENING {srv.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
