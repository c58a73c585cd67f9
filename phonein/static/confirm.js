// Ask before a form that cannot be undone is sent: forms say what to ask in data-confirm.
// A file, not an inline onsubmit: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  }, true);
})();
