/* Web caller: the counter panel follows the hub live; buttons lock until the page reloads. */
"use strict";
(function () {
  var box = document.getElementById("caller");
  if (!box) return;
  window.mppLive(box.dataset.events, {
    panel: function (data) {
      box.innerHTML = data.html;
      box.dataset.updated = String(Date.now());
    }
  });
  document.querySelectorAll(".caller-buttons form, form.filters").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  });
})();
