/* Web display: tiles / latest calls follow the hub; a call is announced once, when its counter's
   call sequence grows and the call is recent (never on a replay after a reconnect). */
"use strict";
(function () {
  var screen = document.getElementById("screen");
  if (!screen) return;
  var seen = {};          /* counter -> highest call_seq shown */
  var primed = false;     /* the first state after (re)connecting is not announced */
  var sound = false;
  var tap = document.getElementById("tap");
  var RECENT_S = 30;

  function announce(call, now) {
    if (!call) return false;
    var before = seen[call.counter];
    var grew = before === undefined ? primed : call.call_seq > before;
    if (before === undefined || call.call_seq > before) seen[call.counter] = call.call_seq;
    if (!grew || now - call.called_at > RECENT_S) return false;
    screen.dataset.lastCall = call.ticket + "@" + call.counter;
    screen.dataset.announced = String(Number(screen.dataset.announced || 0) + 1);
    if (sound && call.voice && call.volume > 0 && window.speechSynthesis) {
      var utterance = new SpeechSynthesisUtterance(call.speak);
      utterance.lang = call.lang;
      utterance.volume = call.volume;
      window.speechSynthesis.speak(utterance);
    }
    return true;
  }
  window.mppLive(screen.dataset.events, {
    tile: function (data) {
      var fresh = window.mppReplace(data.id, data.html);
      if (data.call) {
        if (announce(data.call, data.now) && fresh) fresh.classList.add("fresh");
      } else if (seen[data.counter] === undefined || data.call_seq > seen[data.counter]) {
        seen[data.counter] = data.call_seq;  /* idle counter: remember where it stands */
      }
      screen.dataset.updated = String(Date.now());
    },
    pause: function (data) {
      window.mppReplace("pause", data.html);
    },
    calls: function (data) {
      window.mppReplace("calls", data.html);
      data.calls.slice().reverse().forEach(function (c) { announce(c, data.now); });
      primed = true;
      screen.dataset.updated = String(Date.now());
    }
  }, function (up) { if (!up) primed = false; });
  if (tap) {
    document.body.addEventListener("click", function () {
      sound = true;
      tap.textContent = "\u266A";
      if (window.speechSynthesis) window.speechSynthesis.speak(new SpeechSynthesisUtterance(""));
    });
  }
  // The site's time, whatever time zone the TV is set to: the page carries the site's UTC
  // offset in minutes (data-utc-offset).
  var offset = Number(screen.dataset.utcOffset || 0);
  function tick() {
    var d = new Date(Date.now() + offset * 60000);
    document.getElementById("clock").textContent =
      String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
  }
  tick(); setInterval(tick, 10000);
})();
