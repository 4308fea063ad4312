// neurod dashboard: fetch the server-rendered sections every few seconds and swap them in.
// The server escapes every byte it renders; this script adds no markup of its own. No library,
// no build step: this file is served as it is from the node (Content-Security-Policy: 'self').
(function () {
  "use strict";
  var main = document.getElementById("live");
  var stamp = document.getElementById("updated");
  if (!main || !stamp) return;
  var every = Number(main.dataset.interval) || 2000;
  var busy = false;

  function show(text, ok) {
    stamp.textContent = text;
    stamp.className = ok ? "ok" : "bad";
  }

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(main.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (reply) {
        if (reply.status === 401) {
          window.location.assign("/ui/login");
          return null;
        }
        if (!reply.ok) throw new Error("HTTP " + reply.status);
        return reply.text();
      })
      .then(function (html) {
        if (html === null) return;
        main.innerHTML = html;
        show("updated " + new Date().toLocaleTimeString(), true);
      })
      .catch(function (error) {
        show("update failed: " + error.message, false);
      })
      .finally(function () {
        busy = false;
      });
  }

  setInterval(poll, every);
})();
