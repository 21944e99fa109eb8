"""HTML renderer: the parsed page (not its text) holds the matrix, findings, suppressions, errors and baseline."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from audit_bedrock.reports import FORMATS, renderer
from audit_bedrock.reports.html import render
from tests.support.report_samples import (
    BROKEN,
    DEV,
    EVIL,
    GONE,
    HOSTILE,
    HOSTILE_MESSAGE,
    HOSTILE_OU,
    HOSTILE_RESOURCE,
    PROD,
    Node,
    context,
    parse_html,
    sample_result,
)


def page(baseline: bool = False) -> Node:
    result = sample_result(baseline=baseline)
    return parse_html(render(result, context("prev/findings.json" if baseline else None)).decode())


def test_registered_as_report_html() -> None:
    assert FORMATS["html"][0] == "report.html"
    assert parse_html(renderer("html")(sample_result(), context()).decode()).find("table", cls="matrix")


def test_page_is_self_contained() -> None:
    doc = page()
    assert not doc.find_all("img") and not doc.find_all("iframe") and not doc.find_all("object")
    for s in doc.find_all("script"):
        assert "src" not in s.attrs
    for link in doc.find_all("link"):
        assert link.attrs["href"].startswith("data:")
    for node in doc.iter():
        for attr in ("src", "srcset", "action", "formaction", "poster", "background"):
            assert attr not in node.attrs, f"<{node.tag} {attr}>"
        if node.tag == "a":
            href = node.attrs["href"]
            # in-page anchors, or reference links a reader may click (never fetched by the page)
            assert href.startswith("#") or ("refs" in node.parent.parent.classes if node.parent and node.parent.parent
                                            else False), href
    style = "".join(s.text() for s in doc.find_all("style"))
    assert "url(" not in style and "@import" not in style
    csp = doc.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp)


def test_header_shows_scan_and_counts() -> None:
    doc = page()
    assert doc.by_id("meta-org").text() == "o-abc123"
    assert doc.by_id("meta-caller").text() == PROD
    assert "2026-01-01T00:00:00Z" in doc.by_id("meta-time").text()
    assert doc.by_id("meta-regions").text() == "us-east-1, us-west-2, me-south-1"
    counts = {li.attrs["data-severity"]: int(li.find("span", cls="n").text())
              for li in doc.by_id("counts").find_all("li") if "data-severity" in li.attrs}
    assert counts == {"critical": 0, "high": 4, "medium": 1, "low": 1, "info": 0}
    assert doc.by_id("banner-state").text().startswith("The scan is incomplete")


def _row(doc: Node, account: str) -> Node:
    return doc.find("tr", cls="acct-row", data_account=account)


def _cells(doc: Node, account: str) -> dict[str, Node]:
    return {td.attrs["data-region"]: td for td in _row(doc, account).find_all("td")}


def test_matrix_rows_grouped_by_ou_and_skipped_everywhere_column_collapsed() -> None:
    doc = page()
    matrix = doc.find("table", cls="matrix")
    heads = [th.text() for th in matrix.find("thead").find_all("th")]
    assert heads == ["Account", "us-east-1", "us-west-2", "account-wide"]
    assert "me-south-1" in doc.by_id("collapsed-regions").text()
    groups = {tb.attrs["data-ou"]: [tr.attrs["data-account"] for tr in tb.find_all("tr", cls="acct-row")]
              for tb in matrix.find_all("tbody", cls="ou")}
    assert groups == {"Root/Dev": [BROKEN, DEV], "Root/Prod": [PROD], HOSTILE_OU: [EVIL], "Root/Sandbox": [GONE]}


@pytest.mark.parametrize(("account", "region", "classes", "text"), [
    pytest.param(PROD, "us-east-1", {"open", "sev-high"}, "cloudwatch", id="open-high-cloudwatch"),
    pytest.param(PROD, "us-west-2", {"ok"}, "s3", id="compliant"),
    pytest.param(EVIL, "us-west-2", {"open", "sev-high"}, "off", id="logging-off"),
    pytest.param(EVIL, "account", {"open", "sev-low"}, "1", id="account-wide-low"),
    pytest.param(DEV, "us-east-1", {"open", "sev-medium"}, "on", id="open-medium"),
    pytest.param(DEV, "us-west-2", {"error"}, "ThrottlingException", id="region-error"),
    pytest.param(DEV, "account", {"ok"}, "ok", id="account-wide-ok"),
])
def test_matrix_cell(account: str, region: str, classes: set[str], text: str) -> None:
    cell = _cells(page(), account)[region]
    assert classes <= cell.classes
    assert text in cell.text()


@pytest.mark.parametrize(("account", "state", "text"), [
    pytest.param(BROKEN, "error", "AccessDenied: not authorized", id="account-error"),
    pytest.param(GONE, "skipped", "account is SUSPENDED", id="account-skipped"),
])
def test_matrix_unscanned_account_is_one_wide_cell(account: str, state: str, text: str) -> None:
    tds = _row(page(), account).find_all("td")
    assert len(tds) == 1 and tds[0].attrs["colspan"] == "3"
    assert {state, "wide"} <= tds[0].classes and text in tds[0].text()


def test_skipped_error_and_compliant_cells_differ() -> None:
    doc = page()
    states = {td.attrs["data-state"] for td in doc.find_all("td", cls="cell")}
    assert {"ok", "open", "skipped", "error"} <= states
    css = doc.find("style").text()
    rules = {state: re.search(r"\.cell\." + state + r" \{([^}]*)\}", css) for state in ("ok", "skipped", "error")}
    bodies = {k: m.group(1) for k, m in rules.items() if m}
    assert len(bodies) == 3 and len(set(bodies.values())) == 3


def _finding_items(doc: Node) -> dict[str, Node]:
    return {li.attrs["id"][2:]: li for li in doc.find_all("li", cls="finding")}


def test_every_open_finding_is_grouped_by_account_then_rule() -> None:
    result = sample_result()
    doc = page()
    items = _finding_items(doc)
    assert set(items) == {f.id for f in result.open_findings()}
    for f in result.open_findings():
        li = items[f.id]
        rule = next(a for a in li.ancestors() if "rule-group" in a.classes)
        acct = next(a for a in li.ancestors() if "account-group" in a.classes)
        assert rule.attrs["data-rule"] == f.rule_id and acct.attrs["data-account"] == f.account_id
        assert li.find("p", cls="message").text() == f.message
        assert li.find("code").text() == f.resource
        assert li.attrs["data-severity"] == f.severity
        assert rule.find("div", cls="remediation").text().endswith(f.remediation)
    # account groups carry the name and the OU
    evil = doc.by_id(f"acct-{EVIL}")
    assert evil.find("span", cls="acct-name").text() == HOSTILE
    assert evil.find("span", cls="ou-path").text() == HOSTILE_OU
    # account groups are ordered by their worst finding
    order = [a.attrs["data-account"] for a in doc.find_all("article", cls="account-group")]
    assert order[-1] == DEV


def test_references_link_only_http() -> None:
    group = page().by_id(f"acct-{DEV}").find("section", cls="rule-group", data_rule="BIL-003")
    refs = group.find("ul", cls="refs").find_all("li")
    assert [li.text() for li in refs] == ["javascript:alert(1)", "https://docs.aws.amazon.com/bedrock/latest/APIReference/"]
    assert not refs[0].find_all("a")
    assert refs[1].find("a").attrs["href"] == "https://docs.aws.amazon.com/bedrock/latest/APIReference/"


def test_properties_and_expired_suppression_shown_on_the_finding() -> None:
    result = sample_result()
    f = next(f for f in result.findings if f.rule_id == "BIL-003")
    li = _finding_items(page())[f.id]
    props = li.find("dl", cls="props")
    assert [dt.text() for dt in props.find_all("dt")] == ["missing_data_types"]
    assert props.find("dd").text() == "image, video, audio"
    assert "expired on 2020-01-31" in li.find("p", cls="expired-note").text()
    notices = page().by_id("notices").text()
    assert "expired on 2020-01-31" in notices and "migration window" in notices


def test_suppressed_findings_are_apart_with_reason_and_expiry() -> None:
    doc = page()
    rows = doc.by_id("suppressed").find_all("tr", cls="suppressed-finding")
    assert len(rows) == 1
    assert rows[0].find("td", cls="reason").text() == "dev <em>sandbox</em>, accepted risk"
    assert not rows[0].find_all("em")
    assert rows[0].find("td", cls="expires").text() == "2099-12-31"
    suppressed_id = next(f.id for f in sample_result().findings if f.status == "suppressed")
    assert suppressed_id not in _finding_items(doc)


def test_scan_errors_section() -> None:
    errors = page().by_id("errors")
    acct = errors.find("tr", cls="account-error")
    assert acct.attrs["data-account"] == BROKEN and "AccessDenied" in acct.text()
    cells = errors.find_all("tr", cls="cell-error")
    assert [(c.attrs["data-account"], c.find_all("td")[1].text()) for c in cells] == [(DEV, "us-west-2")]
    assert "account is SUSPENDED" in errors.find("ul", cls="skipped-accounts").text()
    # coverage findings (SCAN-*) are listed as what could not be read, linked to the finding
    gaps = errors.find_all("tr", cls="gap")
    scan001 = next(f for f in sample_result().findings if f.rule_id == "SCAN-001")
    assert [(g.attrs["data-rule"], g.attrs["data-account"]) for g in gaps] == [("SCAN-001", BROKEN)]
    assert gaps[0].find("a").attrs["href"] == f"#f-{scan001.id}"


@pytest.mark.parametrize("where", [
    pytest.param("matrix", id="matrix-row"),
    pytest.param("findings", id="finding-group"),
    pytest.param("filter", id="filter-option"),
])
def test_hostile_values_are_text_not_markup(where: str) -> None:
    doc = page()
    assert not doc.find_all("img") and not doc.find_all("svg") and not doc.find_all("b") and not doc.find_all("em")
    assert len(doc.find_all("script")) == 1  # only the page's own
    for node in doc.iter():
        assert not any(a.startswith("on") for a in node.attrs), f"event handler on <{node.tag}>"
    if where == "matrix":
        assert _row(doc, EVIL).find("span", cls="acct-name").text() == HOSTILE
    elif where == "findings":
        item = next(li for li in _finding_items(doc).values() if li.find("code").text() == HOSTILE_RESOURCE)
        assert item.find("p", cls="message").text() == HOSTILE_MESSAGE
    else:
        assert doc.find("option", value=EVIL).text() == f"{HOSTILE} ({EVIL})"


@pytest.mark.parametrize("baseline", [pytest.param(True, id="with-baseline"), pytest.param(False, id="no-baseline")])
def test_baseline_markers_and_fixed_list(baseline: bool) -> None:
    doc = page(baseline=baseline)
    result = sample_result(baseline=baseline)
    items = _finding_items(doc)
    if not baseline:
        assert not doc.find_all(id="fixed") and not doc.find_all(id="f-new")
        assert not any(li.find_all("span", cls="badge") for li in items.values())
        return
    for f in result.open_findings():
        assert items[f.id].find("span", cls="badge").text() == f.baseline
    assert "4 new" in doc.by_id("meta-baseline").text() and "1 fixed" in doc.by_id("meta-baseline").text()
    assert "prev/findings.json" in doc.by_id("meta-baseline").text()
    fixed = doc.by_id("fixed").find_all("tr", cls="fixed-finding")
    assert [r.find("code").text() for r in fixed] == [f.resource for f in result.fixed]
    assert doc.by_id("f-new").attrs["type"] == "checkbox"


def test_no_findings_page() -> None:
    result = replace(sample_result(), findings=(), fixed=())
    doc = parse_html(render(result, context()).decode())
    assert "No open findings." in doc.by_id("findings").text()
    assert all(td.attrs["data-state"] != "open" for td in doc.find_all("td", cls="cell"))


def test_output_is_deterministic() -> None:
    assert render(sample_result(), context()) == render(sample_result(), context())
