// The screening page without reloads: the page's own forms are sent with fetch (the
// CSRF token comes with each form) and the cards the server sends back replace the old
// ones in place; focus stays on the card. Keyboard: J/K move, X ticks, A/R/Q decide for
// the ticked cards, or the current one when none is ticked. Without this script every
// form still works, one page load each.
(function () {
  "use strict";
  var list = document.getElementById("screening");
  if (!list || !window.fetch || !window.FormData) { return; }
  var statusBox = document.getElementById("screening-status");
  var bulk = document.getElementById("bulk");
  var count = document.getElementById("selected-count");
  var countHint = count ? count.textContent : "";
  var token = document.querySelector('meta[name="csrf-token"]');
  var currentId = null;
  var busy = false;

  function cards() { return Array.prototype.slice.call(list.querySelectorAll("article.signup-card")); }
  function cardOf(node) { return node && node.closest ? node.closest("article.signup-card") : null; }
  function currentCard() {
    return cardOf(document.activeElement) || (currentId && document.getElementById(currentId)) || null;
  }
  function mark(card) {
    cards().forEach(function (c) { c.classList.toggle("current", c === card); });
    currentId = card ? card.id : null;
  }
  function focusCard(card) {
    if (!card) { return; }
    mark(card);
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }
  function ticked() {
    return Array.prototype.slice.call(document.querySelectorAll('input[type=checkbox][form="bulk"]:checked'));
  }
  function updateCount() {
    if (!count) { return; }
    var n = ticked().length;
    count.textContent = n === 0 ? countHint : n === 1 ? "1 signup ticked." : n + " signups ticked.";
  }
  function announce(message, isError) {
    // Emptied first: the same message twice in a row is announced twice.
    statusBox.textContent = "";
    statusBox.classList.toggle("error", !!isError);
    window.setTimeout(function () { statusBox.textContent = message; }, 30);
  }

  // Put the server's cards in place of the old ones; return the new card for ``id``.
  function swap(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    Array.prototype.forEach.call(holder.content.querySelectorAll("article.signup-card"), function (fresh) {
      var old = document.getElementById(fresh.id);
      if (old) { old.replaceWith(fresh); }
    });
    refreshTimes();
    updateCount();
  }

  function send(form, submitter) {
    if (busy) { announce("Still saving the last change: try again in a moment.", true); return; }
    var data = new FormData(form);
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    var card = currentCard() || cardOf(form);
    var cardId = card ? card.id : null;
    var focused = document.activeElement;
    var focusKey = cardOf(focused) && focused.getAttribute ? focused.getAttribute("data-focus-key") : null;
    // Focus on a control outside the cards (the bulk bar's buttons) stays where it is.
    var keepFocus = focused && focused !== document.body && !cardOf(focused);
    busy = true;
    list.setAttribute("aria-busy", "true");
    var headers = { Accept: "application/json" };
    if (token) { headers["X-CSRFToken"] = token.getAttribute("content"); }
    // getAttribute: form.action would be the buttons named "action", not the URL.
    fetch(form.getAttribute("action"), { method: "POST", credentials: "same-origin", headers: headers, body: data })
      .then(function (response) {
        // Anything but JSON is a page: the login page after the session ended, most likely.
        if ((response.headers.get("Content-Type") || "").indexOf("application/json") < 0) {
          throw new Error("Nothing was saved: your session may have ended. Reload the page (and log in again) to carry on.");
        }
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var message = body.error && body.error.message;
            throw new Error(message || "That did not work (error " + response.status + "). Reload the page and try again.");
          }
          return body;
        });
      })
      .then(function (body) {
        swap(body.html || "");
        announce(body.message || "Saved.", false);
        if (keepFocus) { refreshCurrent(cardId); } else { restoreFocus(cardId, focusKey); }
      })
      .catch(function (error) {
        announce(error.message || "That did not work: the connection failed. Try again.", true);
      })
      .finally(function () { busy = false; list.removeAttribute("aria-busy"); });
  }

  function refreshCurrent(cardId) {
    var card = cardId && document.getElementById(cardId);
    if (card) { mark(card); }
  }
  function restoreFocus(cardId, focusKey) {
    var card = cardId && document.getElementById(cardId);
    if (!card) { return; }
    var control = focusKey && card.querySelector('[data-focus-key="' + focusKey + '"]');
    mark(card);
    (control || card).focus();
  }

  // Every screening form, whether clicked or sent from the keyboard.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-screening") || event.defaultPrevented) { return; }
    event.preventDefault();
    send(form, event.submitter || null);
  });

  function decide(action) {
    if (ticked().length && bulk) {
      send(bulk, { name: "action", value: action });
      return;
    }
    var card = currentCard();
    if (!card) { announce("Move to a signup first (J), or tick some (X).", true); return; }
    send(card.querySelector("form.decide"), { name: "action", value: action });
  }

  function typing(node) {
    if (!node || !node.tagName) { return false; }
    if (node.isContentEditable) { return true; }
    var tag = node.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") { return true; }
    if (tag !== "input") { return false; }
    var type = (node.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset", "image", "range", "color", "file"].indexOf(type) < 0;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) { return; }
    if (typing(event.target)) { return; }
    var key = (event.key || "").toLowerCase();
    var all = cards();
    var card = currentCard();
    var at = card ? all.indexOf(card) : -1;
    if (key === "j") {
      focusCard(all[Math.min(at + 1, all.length - 1)]);
    } else if (key === "k") {
      focusCard(all[at < 0 ? 0 : Math.max(at - 1, 0)]);
    } else if (key === "x") {
      if (!card) { return; }
      var box = card.querySelector('input[type=checkbox][form="bulk"]');
      box.checked = !box.checked;
      updateCount();
    } else if (key === "a") {
      decide("approve");
    } else if (key === "r") {
      decide("reject");
    } else if (key === "q") {
      decide("queue");
    } else {
      return;
    }
    event.preventDefault();
  });

  list.addEventListener("focusin", function (event) { mark(cardOf(event.target)); });
  list.addEventListener("change", function (event) {
    if (event.target.getAttribute && event.target.getAttribute("form") === "bulk") { updateCount(); }
  });

  // Times that move on while the page stays open: each listener's wall clock, and how
  // long ago they signed up (the same wording as the server's, web/screening.py).
  function ago(ms) {
    var minutes = Math.max(0, Math.floor(ms / 60000));
    if (minutes < 1) { return "just now"; }
    if (minutes < 60) { return minutes + " min ago"; }
    if (minutes < 1440) { return Math.floor(minutes / 60) + " h ago"; }
    var days = Math.floor(minutes / 1440);
    return days === 1 ? "1 day ago" : days + " days ago";
  }
  function wallClock(zone) {
    try {
      var parts = new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23"
      }).formatToParts(new Date());
      var get = function (type) {
        var part = parts.filter(function (p) { return p.type === type; })[0];
        return part ? part.value : "";
      };
      return get("weekday") + " " + get("hour") + ":" + get("minute");
    } catch (e) {
      return null;
    }
  }
  function refreshTimes() {
    Array.prototype.forEach.call(list.querySelectorAll(".listener-clock[data-zone]"), function (node) {
      var text = wallClock(node.getAttribute("data-zone"));
      if (text && node.textContent !== text) { node.textContent = text; }
    });
    Array.prototype.forEach.call(list.querySelectorAll("time.ago[datetime]"), function (node) {
      var at = Date.parse(node.getAttribute("datetime").replace(/(\.\d{3})\d+/, "$1"));
      if (!isNaN(at)) {
        var text = ago(Date.now() - at);
        if (node.textContent !== text) { node.textContent = text; }
      }
    });
  }
  window.setInterval(refreshTimes, 30000);
  updateCount();
})();
