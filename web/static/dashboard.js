/* Live dashboard: the server sends rendered rows; swap each into place. */
"use strict";
(function () {
  var badge = document.getElementById("live-state");
  if (!badge) return;
  window.mppLive(badge.dataset.events, {
    hello: function () { badge.textContent = badge.dataset.live; },
    replace: function (data) {
      var fresh = window.mppReplace(data.id, data.html);
      if (fresh) fresh.classList.add("changed");
      document.body.dataset.updated = String(Date.now());
    }
  }, function (up) {
    badge.className = "pill " + (up ? "on" : "alarm");
    badge.textContent = up ? badge.dataset.live : badge.dataset.offline;
  });
})();
