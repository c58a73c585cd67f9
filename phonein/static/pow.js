// The signup form's proof-of-work (PHONEIN_CHALLENGE=pow, ALTCHA's format): fetch a
// challenge, find n with SHA-256(salt + n) == challenge using Web Crypto, and send the
// solution with the form. Solving starts when the page loads, so it is usually done
// before the listener has finished typing; a submit waits for it.
(function () {
  "use strict";
  var input = document.getElementById("challenge");
  if (!input || !input.form || !window.crypto || !window.crypto.subtle) { return; }
  var form = input.form;
  var BATCH = 2000;
  var encoder = new TextEncoder();

  function hex(buffer) {
    var bytes = new Uint8Array(buffer);
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }

  function search(c, from) {
    var tries = [];
    for (var n = from; n < from + BATCH && n <= c.maxnumber; n++) {
      tries.push(window.crypto.subtle.digest("SHA-256", encoder.encode(c.salt + n)));
    }
    return Promise.all(tries).then(function (digests) {
      for (var i = 0; i < digests.length; i++) {
        if (hex(digests[i]) === c.challenge) { return from + i; }
      }
      if (from + BATCH > c.maxnumber) { throw new Error("no solution"); }
      return search(c, from + BATCH);
    });
  }

  var started = Date.now();
  var solution = fetch(input.getAttribute("data-url"), { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(function (c) {
      return search(c, 0).then(function (n) {
        input.value = btoa(JSON.stringify({
          algorithm: c.algorithm, challenge: c.challenge, number: n, salt: c.salt, signature: c.signature
        }));
        // How long the work took, for the browser test's measurement.
        input.setAttribute("data-ms", String(Date.now() - started));
      });
    });

  var sending = false;
  form.addEventListener("submit", function (event) {
    if (input.value || sending) { return; }
    event.preventDefault();
    sending = true;
    solution.then(function () { form.submit(); }, function () { sending = false; form.submit(); });
  });
})();
