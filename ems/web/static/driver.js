// Follows a charge live: polls the page's live.json every 2 s and updates the numbers in place.
// The page works without it (reload); nothing here is needed to start, stop or pay.
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
