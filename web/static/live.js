/* Shared live-update helper: an EventSource that swaps server-rendered HTML into the page. */
"use strict";
window.mppLive = function (url, handlers, onState) {
  var source = new EventSource(url);
  Object.keys(handlers).forEach(function (name) {
    source.addEventListener(name, function (event) {
      handlers[name](JSON.parse(event.data));
    });
  });
  source.onopen = function () { if (onState) onState(true); };
  source.onerror = function () { if (onState) onState(false); };
  return source;
};
window.mppReplace = function (id, html) {
  var old = document.getElementById(id);
  if (!old) return null;
  var holder = document.createElement("template");  /* parses <tr> too */
  holder.innerHTML = html.trim();
  var fresh = holder.content.firstElementChild;
  if (fresh) old.replaceWith(fresh);
  return fresh;
};
