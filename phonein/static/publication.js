// Publication editor: save each change as it is made (through the API, with the session
// cookie and the CSRF token), say so on the card, and ask before publishing.
// Without this script the page still works: every button sends what is on screen.
(function () {
  "use strict";
  var form = document.getElementById("publication-editor");
  if (!form) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var api = form.getAttribute("data-api");
  var submitting = false;

  function field(card, name) {
    return card.querySelector('[data-field="' + name + '"]');
  }
  function was(card, name) {
    return form.querySelector('input[name="was-' + name + "-" + card.getAttribute("data-signup") + '"]');
  }
  function current(card, name) {
    var input = field(card, name);
    if (name === "published") { return input.checked ? "y" : ""; }
    return input.value.trim() === "" && name === "order" ? "" : input.value;
  }
  function say(card, text, isError) {
    var state = card.querySelector(".save-state");
    state.textContent = text;
    state.className = "save-state" + (isError ? " error" : " ok");
  }

  function save(card) {
    var body = {};
    var changed = [];
    ["published", "pull_quote", "order"].forEach(function (name) {
      if (current(card, name) !== was(card, name).value) { changed.push(name); }
    });
    if (!changed.length) { return; }
    body.published = field(card, "published").checked;
    if (changed.indexOf("pull_quote") >= 0) { body.pull_quote = field(card, "pull_quote").value || null; }
    if (changed.indexOf("order") >= 0) {
      var order = field(card, "order").value.trim();
      if (order !== "" && !/^-?\d+$/.test(order)) { say(card, "Give the order as a whole number.", true); return; }
      body.order = order === "" ? null : parseInt(order, 10);
    }
    var values = {};
    changed.forEach(function (name) { values[name] = current(card, name); });
    say(card, "Saving…", false);
    fetch(api.replace("{id}", card.getAttribute("data-signup")), {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || ("HTTP " + r.status)); }
        // The page now matches the database: a later submit of the form changes nothing twice.
        changed.forEach(function (name) { was(card, name).value = values[name]; });
        card.classList.toggle("published", !!data.published);
        if (changed.indexOf("published") >= 0) {
          // The heading's count follows; the balances are redrawn on the next page load.
          var count = document.getElementById("selection-count");
          count.textContent = String(parseInt(count.textContent, 10) + (data.published ? 1 : -1));
        }
        say(card, data.published ? "Saved: in the selection." : "Saved: not in the selection.", false);
      });
    }).catch(function (e) {
      if (changed.indexOf("published") >= 0) {
        field(card, "published").checked = was(card, "published").value === "y";
      }
      say(card, "Not saved: " + e.message, true);
    });
  }

  form.addEventListener("change", function (event) {
    var card = event.target.closest && event.target.closest("[data-signup]");
    if (card && event.target.hasAttribute("data-field")) { save(card); }
  });
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    submitting = true;
  });
  window.addEventListener("beforeunload", function (event) {
    // Saves in flight are sent with keepalive and finish anyway; this only warns when a
    // save failed and the producer is leaving without the form's buttons.
    if (!submitting && form.querySelector(".save-state.error")) { event.preventDefault(); event.returnValue = ""; }
  });
})();
