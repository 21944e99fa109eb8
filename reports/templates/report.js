// Client-side filter by severity, account and baseline state. Reads data-* attributes only; writes no markup.
(function () {
  "use strict";
  var bar = document.getElementById("filters");
  if (!bar) { return; }
  bar.hidden = false;
  var sevBoxes = Array.prototype.slice.call(document.querySelectorAll("input.f-sev"));
  var account = document.getElementById("f-account");
  var newOnly = document.getElementById("f-new");
  var status = document.getElementById("f-status");

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }
  function show(el, visible) { el.classList.toggle("is-hidden", !visible); }

  function apply() {
    var sevs = {};
    sevBoxes.forEach(function (b) { sevs[b.value] = b.checked; });
    var acct = account ? account.value : "";
    var onlyNew = !!(newOnly && newOnly.checked);
    var shown = 0, total = 0;
    each(".finding, .suppressed-finding", function (el) {
      var ok = sevs[el.dataset.severity] !== false && (!acct || el.dataset.account === acct) &&
               (!onlyNew || el.dataset.baseline === "new");
      show(el, ok);
      if (el.classList.contains("finding")) { total += 1; if (ok) { shown += 1; } }
    });
    each(".rule-group", function (g) { show(g, g.querySelector(".finding:not(.is-hidden)") !== null); });
    each(".account-group", function (g) { show(g, g.querySelector(".rule-group:not(.is-hidden)") !== null); });
    each("tr.acct-row, tr.account-error, tr.cell-error, tr.gap, tr.fixed-finding, .skipped-accounts li", function (row) {
      show(row, !acct || row.dataset.account === acct);
    });
    each("tbody.ou", function (g) { show(g, g.querySelector("tr.acct-row:not(.is-hidden)") !== null); });
    status.textContent = "showing " + shown + " of " + total + " open findings";
  }

  sevBoxes.forEach(function (b) { b.addEventListener("change", apply); });
  if (account) { account.addEventListener("change", apply); }
  if (newOnly) { newOnly.addEventListener("change", apply); }
  apply();
}());
