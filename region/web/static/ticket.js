/* The public ticket page: the server sends the changing part as text; this only places it. */
"use strict";
(function () {
  var box = document.getElementById("ticket");
  if (!box || !window.EventSource) return;
  var status = box.dataset.status;
  var callSeq = Number(box.dataset.callSeq || 0);
  function put(id, text) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }
  var source = new EventSource(box.dataset.events);
  source.addEventListener("ticket", function (event) {
    var data = JSON.parse(event.data);
    var called = data.status === "called" && (status !== "called" || data.call_seq > callSeq);
    box.className = "ticket status-" + data.status;
    put("headline", data.headline);
    put("detail", data.detail);
    put("stale", data.stale);
    document.getElementById("facts").hidden = data.ahead === null;
    document.getElementById("people-ahead").textContent = data.ahead || "";
    document.getElementById("est-wait").textContent = data.wait || "-";
    var survey = document.getElementById("survey-form");
    if (survey && data.survey && !document.getElementById("survey-thanks")) survey.hidden = false;
    status = data.status;
    callSeq = data.call_seq;
    box.dataset.status = status;
    box.dataset.updated = String(Date.now());
    if (called && navigator.vibrate) navigator.vibrate([400, 200, 400]);
  });
})();
