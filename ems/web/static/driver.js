// Live updates for the driver pages; they work without it (reload): nothing here is needed to start,
// stop or pay. The charger page polls its status.json every 5 s and updates the connector's state; the
// charge page polls its live.json every 2 s and updates the numbers in place.
(function () {
  "use strict";
  var charger = document.getElementById("charger");
  if (!charger || !charger.dataset.status) { return; }
  function check() {
    fetch(charger.dataset.status, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var badge = document.getElementById("status");
        badge.textContent = data.label;
        badge.className = "badge " + data.tone;
        var note = document.getElementById("status-message");
        note.textContent = data.message || "";
        note.className = "notice " + data.tone;
        note.hidden = !data.message;
        var could = charger.dataset.canStart === "yes";
        if (data.can_start !== could && charger.dataset.signedIn === "yes") {
          window.location.reload();  // the start button comes or goes with the connector's state
          return;
        }
        charger.dataset.canStart = data.can_start ? "yes" : "no";
        window.setTimeout(check, 5000);
      })
      .catch(function () { window.setTimeout(check, 10000); });
  }
  window.setTimeout(check, 5000);
})();

(function () {
  "use strict";
  var box = document.getElementById("charge");
  if (!box || !box.dataset.live) { return; }
  var url = box.dataset.live;
  var ids = ["energy", "power", "cost", "elapsed"];
  function set(id, value) {
    var el = document.getElementById(id);
    if (el && value !== null && value !== undefined) { el.textContent = value; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        ids.forEach(function (id) { set(id, data[id]); });
        set("state", data.label);
        set("finish", data.finish || "");
        document.querySelectorAll(".finish").forEach(function (el) { el.hidden = !data.finish; });
        box.dataset.energyWh = String(data.energy_wh);
        box.dataset.state = data.state;
        if (data.receipt_url) {
          window.location.assign(data.receipt_url);
          return;
        }
        if (data.done) {
          var stop = document.getElementById("stop");
          if (stop) { stop.disabled = true; }
        }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
