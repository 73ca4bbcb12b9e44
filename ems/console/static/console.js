// ems console: refresh live pages in place (no full reload, keeps focus and forms untouched).
// Works without it: every page is complete HTML, and forms post normally.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.refresh) return;
  var every = Math.max(5, parseInt(main.dataset.refresh, 10)) * 1000;
  function busy() {
    var a = document.activeElement;
    return a && a !== document.body && main.contains(a) && /INPUT|SELECT|TEXTAREA|BUTTON/.test(a.tagName);
  }
  function tick() {
    if (document.hidden || busy()) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "console-refresh" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        if (fresh && !busy()) main.innerHTML = fresh.innerHTML;
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }
  setInterval(tick, every);
})();
