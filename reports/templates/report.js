// Filters (severity, account, rule, free text, new only) over the findings grouped by rule, and the
// <details> groups opened where a link or a filter points. Reads data-* attributes and text; writes no markup.
(function () {
  "use strict";
  var bar = document.getElementById("filters");
  if (!bar) { return; }
  bar.hidden = false;
  var sevBoxes = Array.prototype.slice.call(document.querySelectorAll("input.f-sev"));
  var account = document.getElementById("f-account");
  var rule = document.getElementById("f-rule");
  var text = document.getElementById("f-text");
  var newOnly = document.getElementById("f-new");
  var status = document.getElementById("f-status");

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }
  function show(el, visible) { el.classList.toggle("is-hidden", !visible); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function words(s) { return (s || "").toLowerCase().replace(/\s+/g, " "); }

  // What the free-text search reads for each row: its own text, its rule's id and title, its account.
  var rows = all(".finding, .suppressed-finding").map(function (el) {
    var group = el.closest(".rule-group");
    var block = el.closest(".account-group");
    var head = group ? group.querySelector("summary").textContent : "";
    var owner = block ? block.querySelector("h4").textContent : "";
    return { el: el, text: words([el.dataset.rule, head, owner, el.textContent].join(" ")) };
  });

  function openAncestors(el) {
    for (var n = el; n; n = n.parentElement) {
      if (n.tagName === "DETAILS") { n.open = true; }
    }
  }

  function apply(reveal) {
    var sevs = {};
    sevBoxes.forEach(function (b) { sevs[b.value] = b.checked; });
    var acct = account ? account.value : "";
    var ruleId = rule ? rule.value : "";
    var terms = words(text ? text.value : "").split(" ").filter(Boolean);
    var onlyNew = !!(newOnly && newOnly.checked);
    var shown = 0, total = 0;
    rows.forEach(function (r) {
      var d = r.el.dataset;
      var ok = sevs[d.severity] !== false && (!acct || d.account === acct) && (!ruleId || d.rule === ruleId) &&
               (!onlyNew || d.baseline === "new") &&
               terms.every(function (t) { return r.text.indexOf(t) !== -1; });
      show(r.el, ok);
      if (r.el.classList.contains("finding")) { total += 1; if (ok) { shown += 1; } }
    });
    all(".account-group").forEach(function (b) { show(b, b.querySelector(".finding:not(.is-hidden)") !== null); });
    all(".rule-group").forEach(function (g) {
      var left = all(".finding:not(.is-hidden)", g).length;
      var blocks = all(".account-group:not(.is-hidden)", g).length;
      var count = g.querySelector(".group-count");
      var of = Number(count.dataset.findings);
      count.textContent = (left === of ? plural(of, "finding") : left + " of " + plural(of, "finding")) +
        " in " + plural(blocks, "account");
      show(g, left > 0);
      if (reveal && left > 0 && (acct || ruleId || terms.length)) { g.open = true; }
    });
    all("tr.acct-row, tr.account-error, tr.cell-error, tr.gap, tr.fixed-finding, .skipped-accounts li").forEach(
      function (row) { show(row, !acct || row.dataset.account === acct); });
    all("tbody.ou").forEach(function (g) { show(g, g.querySelector("tr.acct-row:not(.is-hidden)") !== null); });
    status.textContent = "showing " + shown + " of " + plural(total, "open finding");
  }

  function openAll(open) { all("details.rule-group").forEach(function (d) { d.open = open; }); }

  // An in-page link opens the group it points into; an account link (#acct-ID) filters to that account.
  document.addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("a[href^='#']") : null;
    if (!a) { return; }
    var id = decodeURIComponent(a.getAttribute("href").slice(1));
    var known = account && Array.prototype.some.call(account.options, function (o) { return o.value === id.slice(5); });
    if (id.indexOf("acct-") === 0 && known) {
      e.preventDefault();
      account.value = id.slice(5);
      apply(true);
      document.getElementById("findings").scrollIntoView();
      return;
    }
    var target = document.getElementById(id);
    if (target) { openAncestors(target); }
  });

  sevBoxes.forEach(function (b) { b.addEventListener("change", function () { apply(false); }); });
  [account, rule].forEach(function (s) { if (s) { s.addEventListener("change", function () { apply(true); }); } });
  if (text) { text.addEventListener("input", function () { apply(true); }); }
  if (newOnly) { newOnly.addEventListener("change", function () { apply(false); }); }
  document.getElementById("f-expand").addEventListener("click", function () { openAll(true); });
  document.getElementById("f-collapse").addEventListener("click", function () { openAll(false); });
  apply(false);
  if (location.hash) {
    var start = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (start) { openAncestors(start); start.scrollIntoView(); }
  }
}());
