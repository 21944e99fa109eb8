"""report.html in a real headless Chromium (Debian's, via Playwright): renders, filters, escapes, fetches nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock.model import Finding
from audit_bedrock.reports.html import render
from audit_bedrock.standin import estate
from audit_bedrock.standin.evidence import EvidenceAnswers
from audit_bedrock.standin.proxy import Proxy
from tests.conftest import load_json, run_cli
from tests.support import shared_demo_estate
from tests.support.report_samples import (
    DEV,
    EVIL,
    HOSTILE,
    HOSTILE_MESSAGE,
    PROD,
    context,
    finding,
    sample_result,
)

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Loaded:
    """A page opened from a file, with every request it made and every dialog or console error."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def visible_findings(self) -> set[str]:
        ids: list[str] = self.page.eval_on_selector_all(
            "li.finding", "els => els.filter(e => e.checkVisibility()).map(e => e.id.slice(2))")
        return set(ids)

    def visible_groups(self) -> dict[str, str]:
        """Rule id -> the group's count line, for each rule group left by the filters (open or not)."""
        found: dict[str, str] = dict(self.page.eval_on_selector_all(
            "details.rule-group", "els => els.filter(e => e.checkVisibility())"
                                  ".map(e => [e.dataset.rule, e.querySelector('.group-count').textContent])"))
        return found

    def open_groups(self) -> set[str]:
        ids: list[str] = self.page.eval_on_selector_all(
            "details.rule-group", "els => els.filter(e => e.open).map(e => e.dataset.rule)")
        return set(ids)

    def visible_rows(self) -> set[str]:
        ids: list[str] = self.page.eval_on_selector_all(
            "tr.acct-row", "els => els.filter(e => e.checkVisibility()).map(e => e.dataset.account)")
        return set(ids)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (a dev dependency) is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_report(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def _open(path: Path) -> Loaded:
        ctx = browser.new_context(java_script_enabled=True)
        contexts.append(ctx)
        page = ctx.new_page()
        loaded = Loaded(page, path.resolve().as_uri())

        def route(r: Any) -> None:  # anything but the report itself is aborted, and recorded
            if r.request.url != loaded.url:
                r.abort()
            else:
                r.continue_()

        ctx.route("**/*", route)
        page.on("request", lambda req: loaded.requests.append(req.url))
        page.on("dialog", lambda d: (loaded.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: loaded.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: loaded.errors.append(str(e)))
        page.goto(loaded.url, wait_until="load")
        page.wait_for_timeout(150)  # let any late fetch (favicon, fonts) show up
        return loaded

    yield _open
    for c in contexts:
        c.close()


@pytest.fixture
def sample(tmp_path: Path, open_report: Any) -> Loaded:
    path = tmp_path / "report.html"
    path.write_bytes(render(sample_result(baseline=True), context("prev/findings.json")))
    loaded: Loaded = open_report(path)
    return loaded


def test_sample_renders_without_network_or_script_errors(sample: Loaded) -> None:
    result = sample_result(baseline=True)
    assert sample.requests == [sample.url]
    assert sample.errors == [] and sample.dialogs == []
    assert sample.visible_rows() == {a.id for a in result.meta.accounts}
    assert sample.visible_findings() == {f.id for f in result.open_findings()}
    assert sample.page.is_visible("#filters")
    status = sample.page.text_content("#f-status") or ""
    assert status == f"showing {len(result.open_findings())} of {len(result.open_findings())} open findings"


def test_hostile_account_name_is_text_and_creates_no_element(sample: Loaded) -> None:
    page = sample.page
    assert page.locator("img").count() == 0 and page.locator("svg").count() == 0
    assert page.locator("script").count() == 1
    assert page.evaluate("window.__xss") is None
    name = page.locator(f"tr.acct-row[data-account='{EVIL}'] .acct-name")
    assert name.inner_text() == HOSTILE
    assert page.locator(f"#acct-{EVIL} .acct-name").inner_text() == HOSTILE
    assert page.get_by_text(HOSTILE_MESSAGE).count() == 1
    assert sample.dialogs == []


def _expected(sevs: set[str] | None = None, account: str | None = None, new_only: bool = False,
              rule: str | None = None, words: tuple[str, ...] = ()) -> set[str]:
    result = sample_result(baseline=True)
    names = {a.id: a.name for a in result.meta.accounts}

    def says(f: Finding) -> str:  # what the page shows of a finding, its rule and its account
        return " ".join((f.rule_id, f.title, names[f.account_id], f.account_id, f.region or "account-wide",
                         f.message, f.resource, f.severity)).lower()

    return {f.id for f in result.open_findings()
            if (sevs is None or f.severity in sevs) and (account is None or f.account_id == account)
            and (not new_only or f.baseline == "new") and (rule is None or f.rule_id == rule)
            and all(w.lower() in says(f) for w in words)}


@pytest.mark.parametrize(("uncheck", "account", "new_only", "rule", "text", "rows"), [
    pytest.param(("high",), None, False, None, "", None, id="hide-high"),
    pytest.param(("critical", "high", "medium", "info"), None, False, None, "", None, id="only-low"),
    pytest.param((), EVIL, False, None, "", {EVIL}, id="one-account"),
    pytest.param(("low",), EVIL, False, None, "", {EVIL}, id="account-and-severity"),
    pytest.param((), None, True, None, "", None, id="new-only"),
    pytest.param((), PROD, True, None, "", {PROD}, id="account-new-only-none"),
    pytest.param((), None, False, "BIL-001", "", None, id="one-rule"),
    pytest.param(("high",), None, False, "BIL-001", "", None, id="rule-and-severity-none"),
    pytest.param((), None, False, None, "PAYMENTS-prod", None, id="search-account-name-any-case"),
    pytest.param((), None, False, None, "data-science  us-east-1", None, id="search-all-words"),
    pytest.param((), None, False, None, "large and binary", None, id="search-rule-title"),
    pytest.param((), None, False, None, "no-such-text", None, id="search-nothing"),
    pytest.param((), EVIL, False, None, "role/old", {EVIL}, id="search-and-account"),
])
def test_filters(sample: Loaded, uncheck: tuple[str, ...], account: str | None, new_only: bool, rule: str | None,
                 text: str, rows: set[str] | None) -> None:
    page = sample.page
    for sev in uncheck:
        page.uncheck(f"#f-sev-{sev}")
    if account:
        page.select_option("#f-account", account)
    if new_only:
        page.check("#f-new")
    if rule:
        page.select_option("#f-rule", rule)
    if text:
        page.fill("#f-text", text)
    sevs = {"critical", "high", "medium", "low", "info"} - set(uncheck)
    want = _expected(sevs, account, new_only, rule, tuple(text.split()))
    assert sample.visible_findings() == want
    assert (page.text_content("#f-status") or "").startswith(f"showing {len(want)} of ")
    all_accounts = {a.id for a in sample_result().meta.accounts}
    assert sample.visible_rows() == (rows if rows is not None else all_accounts)
    # account groups with nothing left are hidden as a whole
    groups: list[str] = page.eval_on_selector_all(
        "section.account-group", "els => els.filter(e => e.checkVisibility()).map(e => e.dataset.account)")
    assert set(groups) == {f.account_id for f in sample_result().open_findings() if f.id in want}
    # a rule group with nothing left is hidden, the others count what is left
    rules = {f.rule_id for f in sample_result().open_findings() if f.id in want}
    assert set(sample.visible_groups()) == rules
    # and everything comes back
    page.fill("#f-text", "")
    page.select_option("#f-rule", "")
    page.select_option("#f-account", "")
    for sev in uncheck:
        page.check(f"#f-sev-{sev}")
    if new_only:
        page.uncheck("#f-new")
    assert sample.visible_findings() == _expected()


def test_demo_estate_report_in_browser(request: pytest.FixtureRequest, tmp_path: Path, open_report: Any) -> None:
    endpoint = shared_demo_estate(request.config).endpoint
    out = tmp_path / "out"
    proc = run_cli(["--org", "--regions", "us-east-1,us-west-2,eu-west-1,me-south-1", "--output-dir", str(out),
                    "--format", "json,html"], endpoint)
    assert proc.returncode == 1, proc.stderr
    doc = load_json(out / "findings.json")
    loaded: Loaded = open_report(out / "report.html")
    page = loaded.page
    assert loaded.requests == [loaded.url] and loaded.errors == []
    assert loaded.visible_rows() == {a["id"] for a in doc["scan"]["accounts"]}
    for a in doc["scan"]["accounts"]:
        assert page.locator(f"tr.acct-row[data-account='{a['id']}'] .acct-name").inner_text() == a["name"]
    opens = [f for f in doc["findings"] if f["status"] == "open"]
    assert len(opens) > 10 and loaded.visible_findings() == set() and loaded.open_groups() == set()  # collapsed
    page.click("#f-expand")
    assert loaded.visible_findings() == {f["id"] for f in opens}
    for f in opens:
        group = page.locator(f"details.rule-group[data-rule='{f['rule_id']}']")
        assert group.count() == 1 and f["rule_id"] in group.locator("summary").inner_text()
        assert group.locator(f"section.account-group[data-account='{f['account_id']}'] #f-{f['id']}").count() == 1
    # the region no demo account has enabled is collapsed out of the matrix
    assert "me-south-1" in (page.text_content("#collapsed-regions") or "")
    heads = page.locator("table.matrix thead th").all_inner_texts()
    assert heads[:4] == ["Account", "us-east-1", "us-west-2", "eu-west-1"] and "me-south-1" not in heads
    assert heads[4:] == (["account-wide"] if any(f["region"] is None for f in doc["findings"]) else [])


def seed_hostile_org(endpoint: str) -> dict[str, str]:
    """A small organization of our own (not the demo): member accounts and OUs whose names carry markup,
    one of them with logging to a bucket whose prefix carries markup too."""
    mgmt = estate.AccountClients(endpoint, {"aws_access_key_id": "x", "aws_secret_access_key": "x"})
    org = estate.organization(mgmt, {"<b>Prod</b>": None})
    ids = {name: org.add_account(name, "<b>Prod</b>", email="a@example.com") for name in (HOSTILE, "plain & simple")}
    c = estate.assume(mgmt, ids[HOSTILE], "seed")
    estate.bucket(c, "us-east-1", "logs-bucket")
    estate.put_logging(c, "us-east-1", {**estate.s3_config("logs-bucket", "<script>window.__xss=9</script>"),
                                        "textDataDeliveryEnabled": True})
    return ids


def test_hostile_organization_in_browser(moto_subprocess: str, tmp_path: Path, open_report: Any) -> None:
    ids = seed_hostile_org(moto_subprocess)
    out = tmp_path / "out"
    with Proxy(moto_subprocess, answers=EvidenceAnswers()) as proxy:  # answers LookupEvents, which moto lacks
        proc = run_cli(["--org", "--regions", "us-east-1,us-west-2", "--output-dir", str(out)], proxy.url)
    assert proc.returncode in (1, 3), proc.stderr
    doc = load_json(out / "findings.json")
    loaded: Loaded = open_report(out / "report.html")
    page = loaded.page
    assert loaded.requests == [loaded.url] and loaded.errors == [] and loaded.dialogs == []
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    assert page.locator("script").count() == 1 and page.evaluate("window.__xss") is None
    for name, acct in ids.items():
        assert page.locator(f"tr.acct-row[data-account='{acct}'] .acct-name").inner_text() == name
    assert page.locator(f"tr.acct-row[data-account='{ids[HOSTILE]}']").locator("xpath=..").get_attribute(
        "data-ou") == "Root/<b>Prod</b>"
    assert loaded.visible_rows() == {a["id"] for a in doc["scan"]["accounts"]}
    page.click("#f-expand")
    assert loaded.visible_findings() == {f["id"] for f in doc["findings"] if f["status"] == "open"}
    assert any(f["account_id"] == ids[HOSTILE] for f in doc["findings"])
    prefixed = [f["message"] for f in doc["findings"] if "__xss=9" in f["message"]]
    body = page.inner_text("body")
    assert all(m in body for m in prefixed)  # the hostile key prefix shows as text wherever a rule quotes it
    # filtering to the hostile account leaves exactly its findings
    page.select_option("#f-account", ids[HOSTILE])
    assert loaded.visible_findings() == {f["id"] for f in doc["findings"]
                                         if f["status"] == "open" and f["account_id"] == ids[HOSTILE]}


def _many(n: int) -> Any:
    """The sample with BIL-001 in a second account and `n` more low BIL-010 findings: too many to draw expanded."""
    result = sample_result()
    extra = [finding("BIL-001", "high", DEV, "data-science", "us-east-1",
                     "arn:aws:bedrock:us-east-1:333333333333:model-invocation-logging")]
    extra += [finding("BIL-010", "low", PROD, "payments-prod", None, f"arn:aws:iam::111111111111:role/old-{i}")
              for i in range(n)]
    from dataclasses import replace
    return replace(result, findings=(*result.findings, *extra))


@pytest.fixture
def collapsed(tmp_path: Path, open_report: Any) -> Loaded:
    path = tmp_path / "report.html"
    path.write_bytes(render(_many(6), context()))
    loaded: Loaded = open_report(path)
    return loaded


def test_groups_start_collapsed_and_open_where_a_link_or_a_filter_points(collapsed: Loaded) -> None:
    page = collapsed.page
    result = _many(6)
    assert collapsed.errors == [] and collapsed.open_groups() == set() and collapsed.visible_findings() == set()
    # a "fix first" link opens its rule's group
    page.click("#fix-first li[data-rule='BIL-001'] a")
    assert collapsed.open_groups() == {"BIL-001"}
    assert collapsed.visible_findings() == {f.id for f in result.open_findings() if f.rule_id == "BIL-001"}
    # an account link filters to that account and opens what is left
    page.click(f"#worst-accounts a[href='#acct-{EVIL}']")
    assert page.input_value("#f-account") == EVIL
    assert collapsed.visible_findings() == {f.id for f in result.open_findings() if f.account_id == EVIL}
    groups = collapsed.visible_groups()
    assert groups["BIL-001"] == "1 of 2 findings in 1 account"  # the count follows the filter
    assert "BIL-010" in groups and "BIL-004" not in groups
    # a search opens the groups it matches
    page.select_option("#f-account", "")
    page.click("#f-collapse")
    assert collapsed.visible_findings() == set()
    page.fill("#f-text", "role/old-3")
    assert collapsed.visible_findings() == {f.id for f in result.open_findings() if f.resource.endswith("old-3")}
    assert collapsed.visible_groups() == {"BIL-010": "1 of 7 findings in 1 account"}
    page.fill("#f-text", "")
    assert collapsed.visible_groups()["BIL-010"] == "7 findings in 2 accounts"
    page.click("#f-expand")
    assert collapsed.visible_findings() == {f.id for f in result.open_findings()}
