/* Citizen ticket page: live status; buzz when the ticket is called. */
"use strict";
(function () {
  var box = document.getElementById("ticket");
  if (!box) return;
  var offline = document.getElementById("offline");
  var status = box.dataset.status;
  var callSeq = Number(box.dataset.callSeq || 0);
  window.mppLive(box.dataset.events, {
    ticket: function (data) {
      box.innerHTML = data.html;
      var called = data.status === "called" && (status !== "called" || data.call_seq > callSeq);
      status = data.status;
      callSeq = data.call_seq;
      box.dataset.status = status;
      box.dataset.updated = String(Date.now());
      if (called) {
        box.classList.add("flash-call");
        if (navigator.vibrate) navigator.vibrate([400, 200, 400]);
        document.title = "\u25B6 " + data.data.number + " \u2192 " + (data.data.counter_name || "");
      }
    }
  }, function (up) { if (offline) offline.hidden = up; });
})();
