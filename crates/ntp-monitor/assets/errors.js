// Loaded first: any script error becomes visible to a person (banner) and
// to the headless test (title).
"use strict";
window.__errors = [];
window.onerror = function (msg, src, line) {
  window.__errors.push(msg + " at " + src + ":" + line);
  document.title = "ntp-monitor: error " + msg;
  var b = document.getElementById("error");
  if (b) { b.textContent = "Script error: " + msg; b.hidden = false; }
};
window.addEventListener("unhandledrejection", function (e) {
  window.onerror(String(e.reason && e.reason.message || e.reason), "promise", 0);
});
