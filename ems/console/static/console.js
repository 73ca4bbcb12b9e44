// ems console, progressive: works without it (complete HTML pages, plain forms; wide tables scroll).
// With it: (1) tables get their column names on each cell, so a phone shows each row as a card;
// (2) live pages (data-refresh) refresh in place, never while you are typing or focused on a control.
(function () {
  "use strict";
  function labelTables(root) {
    root.querySelectorAll("table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!heads.length || table.classList.contains("nostack")) return;
      table.classList.add("stack");
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (cell, i) {
          if (heads[i] && cell.colSpan === 1) cell.setAttribute("data-label", heads[i]);
        });
      });
    });
  }
  var main = document.getElementById("main");
  if (!main) return;
  labelTables(main);
  // after a refused form, put the keyboard on the first field to fix (its message is right under it)
  var invalid = main.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
  if (!main.dataset.refresh) return;
  var every = Math.max(5, parseInt(main.dataset.refresh, 10)) * 1000;
  function busy() {
    var a = document.activeElement;
    return a && a !== document.body && a !== main && main.contains(a) && /INPUT|SELECT|TEXTAREA|BUTTON/.test(a.tagName);
  }
  function tick() {
    if (document.hidden || busy()) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "console-refresh" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        if (fresh && !busy()) {
          main.innerHTML = fresh.innerHTML;
          labelTables(main);
        }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  setInterval(tick, every);
})();
