// Producers' pages: copy a link with one click, and show times in the producer's own zone.
// A file, not inline script: the Content-Security-Policy allows none.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) { return; }
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    var done = function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy link"; }, 2000);
    };
    field.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (document.execCommand("copy")) { done(); }
      });
    } else if (document.execCommand("copy")) {
      done();
    }
  });

  // The producer's zone is the browser's: producers travel, and their browser knows where
  // they are. Without script the forum's own time stands alone.
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  Array.prototype.forEach.call(document.querySelectorAll(".your-time[data-utc]"), function (el) {
    var when = new Date(el.getAttribute("data-utc"));
    if (isNaN(when) || (zone && zone === el.getAttribute("data-forum-zone"))) { return; }
    el.textContent = when.toLocaleString(undefined, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      // The zone by its name ("Central European Standard Time"), never an ID or offset.
      timeZoneName: "long"
    });
    el.hidden = false;
    var forum = el.parentNode && el.parentNode.querySelector(".forum-time");
    if (forum) { forum.classList.add("beside"); }
  });
})();
