"""HTML renderer: the parsed page (not its text) holds the matrix, findings, suppressions, errors and baseline."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from audit_bedrock.reports import FORMATS, renderer
from audit_bedrock.reports.html import render
from audit_bedrock.reports.words import plural
from tests.support.report_samples import (
    BROKEN,
    CATALOG,
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
    finding,
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


def test_every_open_finding_is_grouped_by_rule_then_account() -> None:
    result = sample_result()
    doc = page()
    items = _finding_items(doc)
    assert set(items) == {f.id for f in result.open_findings()}
    for f in result.open_findings():
        li = items[f.id]
        rule = next(a for a in li.ancestors() if "rule-group" in a.classes)
        acct = next(a for a in li.ancestors() if "account-group" in a.classes)
        assert rule.tag == "details" and rule.attrs["data-rule"] == f.rule_id
        assert acct.attrs["data-account"] == f.account_id
        assert li.find("p", cls="message").text() == f.message
        assert li.find("code").text() == f.resource
        assert li.attrs["data-severity"] == f.severity
    # account blocks carry the name and the OU
    evil = doc.by_id(f"acct-{EVIL}")
    assert evil.find("span", cls="acct-name").text() == HOSTILE
    assert evil.find("span", cls="ou-path").text() == HOSTILE_OU
    # rule groups are ordered by their worst finding, then by how many
    order = [g.attrs["data-rule"] for g in doc.find_all("details", cls="rule-group")]
    assert order == ["BIL-001", "BIL-004", "BIL-012", "SCAN-001", "BIL-003", "BIL-010"]


def _groups(doc: Node) -> dict[str, Node]:
    return {g.attrs["data-rule"]: g for g in doc.find_all("details", cls="rule-group")}


def test_remediation_is_shown_once_per_rule_with_the_accounts_underneath() -> None:
    """BIL-001 fires in two accounts: one group, one remediation, two account blocks, a summary that counts."""
    result = sample_result()
    twice = finding("BIL-001", "high", DEV, "data-science", "us-east-1",
                    "arn:aws:bedrock:us-east-1:333333333333:model-invocation-logging")
    result = replace(result, findings=(*result.findings, twice))
    doc = parse_html(render(result, context()).decode())
    groups = _groups(doc)
    for rid, g in groups.items():
        opens = [f for f in result.open_findings() if f.rule_id == rid]
        accounts = list(dict.fromkeys(f.account_id for f in opens))
        assert len(g.find_all("div", cls="remediation")) == 1
        assert g.find("div", cls="remediation").text().endswith(CATALOG[rid]["remediation"])
        blocks = [b.attrs["data-account"] for b in g.find_all("section", cls="account-group")]
        assert sorted(blocks) == sorted(accounts)
        summary = " ".join(g.find("summary").text().split())
        assert summary.endswith(f"{plural(len(opens), 'finding')} in {plural(len(accounts), 'account')}")
    assert len(groups["BIL-001"].find_all("section", cls="account-group")) == 2
    assert len(groups["BIL-001"].find_all("li", cls="finding")) == 2
    # every account has one anchor (its first block), as the matrix and the worst accounts link to it
    anchors = [n.attrs["id"] for n in doc.find_all("section", cls="account-group") if "id" in n.attrs]
    assert sorted(anchors) == sorted(f"acct-{a}" for a in {f.account_id for f in result.open_findings()})


@pytest.mark.parametrize(("findings", "open_"), [
    pytest.param(None, True, id="few-findings-expanded"),
    pytest.param(11, False, id="many-findings-collapsed"),
])
def test_rule_groups_are_collapsible_details(findings: int | None, open_: bool) -> None:
    from audit_bedrock.reports.html import OPEN_ALL_AT_MOST

    result = sample_result()
    if findings is not None:
        assert findings > OPEN_ALL_AT_MOST
        extra = tuple(replace(result.findings[0], id=f"{i:064x}", resource=f"arn:aws:logs:x:{i}")
                      for i in range(findings))
        result = replace(result, findings=result.findings + extra)
    doc = parse_html(render(result, context()).decode())
    for g in doc.find_all("details", cls="rule-group"):
        assert g.children and [c for c in g.children if isinstance(c, Node)][0].tag == "summary"
        assert ("open" in g.attrs) is open_


def test_filter_bar_has_rule_and_text_search_next_to_severity_and_account() -> None:
    bar = page(baseline=True).by_id("filters")
    rules = [o.attrs["value"] for o in bar.by_id("f-rule").find_all("option")]
    result = sample_result()
    assert rules == ["", *sorted({f.rule_id for f in result.findings if f.status in ("open", "suppressed")})]
    assert bar.by_id("f-text").attrs["type"] == "search"
    assert {"f-account", "f-new", "f-expand", "f-collapse", "f-status"} <= {n.attrs.get("id") for n in bar.iter()}
    assert len(bar.find_all("input", cls="f-sev")) == 5


def test_csp_admits_the_inline_script_and_style_by_hash_and_nothing_else() -> None:
    import base64
    import hashlib

    doc = page()
    csp = dict(d.strip().split(" ", 1) for d in
               doc.find("meta", http_equiv="Content-Security-Policy").attrs["content"].split(";"))

    def digest(node: Node) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(node.text().encode()).digest()).decode() + "'"

    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == digest(doc.find("script"))
    assert csp["style-src"] == digest(doc.find("style"))


def test_references_link_only_http() -> None:
    group = page().by_id("rule-BIL-003")
    refs = group.find("ul", cls="refs").find_all("li")
    assert [li.text() for li in refs] == ["javascript:alert(1)", "https://docs.aws.amazon.com/bedrock/latest/APIReference/"]
    assert not refs[0].find_all("a")
    assert refs[1].find("a").attrs["href"] == "https://docs.aws.amazon.com/bedrock/latest/APIReference/"


def test_properties_and_expired_suppression_shown_on_the_finding() -> None:
    result = sample_result()
    f = next(f for f in result.findings if f.rule_id == "BIL-003")
    li = _finding_items(page())[f.id]
    props = li.find("dl", cls="props")
    assert [dt.text() for dt in props.find_all("dt")] == ["missing data types"]
    assert props.find("dd").text() == "image, video, audio"
    assert "expired on 2020-01-31" in li.find("p", cls="expired-note").text()
    notices = page().by_id("notices").text()
    assert "expired on 2020-01-31" in notices and "migration window" in notices


@pytest.mark.parametrize(("properties", "shown"), [
    pytest.param({"used_by": [{"kind": "log_group", "name": "/ml/bedrock"}]}, [("used by", "log group /ml/bedrock")],
                 id="kind-name-pairs"),
    pytest.param({"effective_public_access_block": {"BlockPublicAcls": False, "RestrictPublicBuckets": True}},
                 [("effective public access block", "BlockPublicAcls: no; RestrictPublicBuckets: yes")], id="dict"),
    pytest.param({"encryption": None, "denied_actions": [], "reasons": {}}, [("denied actions", "none"),
                 ("encryption", "none"), ("reasons", "none")], id="null-and-empty"),
    pytest.param({"public_write": False, "regions_subset": True}, [("public write", "no"), ("regions subset", "yes")],
                 id="flags"),
    pytest.param({"destinations": ["s3", "large_data"], "kind": "log_group"},
                 [("destinations", "s3, large data"), ("kind", "log group")], id="scanner-names"),
    pytest.param({"retention_days": 30, "bucket_region": "us_east_1x"}, [("bucket region", "us_east_1x"),
                 ("retention days", "30")], id="aws-values-kept"),
    pytest.param({"KmsKeyId": "k_1"}, [("KmsKeyId", "k_1")], id="aws-key-kept"),
])
def test_properties_are_words_not_raw_values(properties: dict[str, object], shown: list[tuple[str, str]]) -> None:
    result = sample_result()
    f = next(f for f in result.findings if f.rule_id == "BIL-001")
    result = replace(result, findings=tuple(replace(x, properties=properties) if x.id == f.id else x
                                            for x in result.findings))
    doc = parse_html(render(result, context()).decode())
    props = _finding_items(doc)[f.id].find("dl", cls="props")
    assert list(zip([d.text() for d in props.find_all("dt")], [d.text() for d in props.find_all("dd")],
                    strict=True)) == shown
    text = props.text()
    for raw in ("{", "[", "null", "None", "True", "False", "'"):
        assert raw not in text


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


def test_first_screen_headline_worst_accounts_and_fix_first() -> None:
    """The page says what to do first: logging coverage, the worst accounts, and the fixes removing most of the
    critical and high findings, most first."""
    result = sample_result()
    doc = page()
    scanned = [c for c in result.coverage if c.status == "scanned"]
    on = sum(1 for c in scanned if c.logging_enabled)
    headline = " ".join(doc.find(id="headline").text().split())
    assert f"Logging is on in {on} of {len(scanned)} account-regions scanned" in headline
    worst = [li.find("a").text() for li in doc.find(id="worst-accounts").find_all("li")]
    assert worst[0] == HOSTILE  # the most findings at the worst severity, shown escaped
    rules = [li.attrs["data-rule"] for li in doc.find(id="fix-first").find_all("li")]
    urgent = [f for f in result.open_findings() if f.severity in ("critical", "high")]
    assert set(rules) == {f.rule_id for f in urgent}
    counts = [sum(1 for f in urgent if f.rule_id == r) for r in rules]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize(("n", "word", "text"), [
    pytest.param(1, "open finding", "1 open finding", id="one"),
    pytest.param(2, "open finding", "2 open findings", id="many"),
    pytest.param(0, "account", "0 accounts", id="none"),
])
def test_plurals(n: int, word: str, text: str) -> None:
    from audit_bedrock.reports.html import plural

    assert plural(n, word) == text


@pytest.mark.parametrize(("remediation", "html"), [
    pytest.param("Set `s3Config` now", "Set <code>s3Config</code> now", id="code"),
    pytest.param("a <b> `x<y>`", "a &lt;b&gt; <code>x&lt;y&gt;</code>", id="escaped"),
    pytest.param("odd ` tick", "odd ` tick", id="unmatched"),
])
def test_backticks_become_code(remediation: str, html: str) -> None:
    from audit_bedrock.reports.html import code_spans

    assert str(code_spans(remediation)) == html


def test_rules_table_labels_the_default_and_the_worst_open_severity() -> None:
    """Both shown, labelled: the rule's default (as --list-rules prints it) and its worst open finding."""
    table = page().find("table", cls="rules")
    heads = [th.text() for th in table.find_all("th")]
    assert heads[1:3] == ["Default severity", "Worst open finding"] and "Severity" not in heads
    rows = {tr.attrs["data-rule"]: tr for tr in table.find("tbody").find_all("tr")}
    # BIL-004's default is medium (the catalog), its worst open instance high
    assert rows["BIL-004"].find("td", cls="default-sev").text() == CATALOG["BIL-004"]["severity"] == "medium"
    assert rows["BIL-004"].find("td", cls="worst-sev").text() == "high"
    assert rows["BIL-004"].find("a").attrs["href"] == "#rule-BIL-004"


@pytest.mark.parametrize(("delivering", "expected"), [
    pytest.param((None, None), None, id="no-use-no-evidence-sentence"),
    pytest.param((True, True), "Where Bedrock was used, 2 delivering.", id="all-delivering"),
    pytest.param((True, False), "Where Bedrock was used, 1 delivering, 1 not delivering (BIL-022).", id="one-silent"),
    pytest.param((False, False), "Where Bedrock was used, 0 delivering, 2 not delivering (BIL-022).", id="all-silent"),
])
def test_headline_says_how_many_deliver(delivering: tuple[bool | None, bool | None], expected: str | None) -> None:
    """issue 13: 'logging on in N of M account-regions; K delivering' (BIL-022's evidence in the coverage)."""
    from audit_bedrock.model import Coverage
    from audit_bedrock.reports.markdown import render as render_md

    cells = tuple(Coverage("111111111111", region, "scanned", logging_enabled=True, delivering=d)
                  for region, d in zip(("us-east-1", "eu-west-1"), delivering, strict=True))
    result = replace(sample_result(), coverage=cells)
    headline = " ".join(parse_html(render(result, context()).decode()).find(id="headline").text().split())
    assert headline.startswith("Logging is on in 2 of 2 account-regions scanned.")
    md = render_md(result, context()).decode()
    if expected is None:
        assert "Where Bedrock was used" not in headline and "Where Bedrock was used" not in md
    else:
        assert headline.endswith(expected)
        assert expected.replace(" (BIL-022)", "") in md
