// Producer queue board: poll the queue and the approved list; act through the JSON API
// with the session cookie and the CSRF token. It shows the switchboard too: every
// caller's line with timers that tick from the server's clock, the studio line, and the
// callers on the line nobody has screened yet, with a form to screen them live.
(function () {
  "use strict";
  var root = document.getElementById("queue-board");
  var slug = root.getAttribute("data-slug");
  var queueUrl = root.getAttribute("data-queue-url");
  // The waiting list comes a page at a time: the first WAITING_SHOWN callers, and the
  // count of all (total_waiting). A queue of thousands stays a cheap poll.
  var WAITING_SHOWN = 50;
  if (!/[?&]limit=/.test(queueUrl)) {
    queueUrl += (queueUrl.indexOf("?") < 0 ? "?" : "&") + "limit=" + WAITING_SHOWN;
  }
  var approvedUrl = root.getAttribute("data-approved-url");
  var doneUrl = root.getAttribute("data-done-url");
  var last = null;  // the last queue answer: what "next" and "finish" check before they act
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
  // The questions a producer asks a caller on the phone, word for word as the consent
  // ledger stores them (consents.ON_THE_PHONE).
  var asked = { sms_consent: root.getAttribute("data-asked-sms"), publish_consent: root.getAttribute("data-asked-publish") };
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var forumApi = "/api/v1/forums/" + encodeURIComponent(slug);
  var shown = {};  // section -> the JSON it shows
  var busy = false;
  var drafts = {};  // call id -> its screening form (values, errors), kept across redraws
  var focusAfterDraw = null;  // [call id, field]: where a failed screening put the cursor
  var LIVE_STATES = { ringing: true, holding: true, on_air: true };
  var STANCES = ["for", "against", "neutral", "other"];

  function showError(message) {
    var box = document.getElementById("queue-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // Shared with the presenter's board (static/boards.js).
  var B = PhoneinBoards;
  var el = B.el, mmss = B.mmss, hhmm = B.hhmm, learnClock = B.learn;
  var timer = B.timer;
  function tick() { B.tickAll(root); B.tickShow(document.getElementById("queue-show")); }

  function request(method, url, body, onFail) {
    busy = true;
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var error = new Error((data.error && data.error.message) || ("HTTP " + r.status));
          error.status = r.status;
          error.fields = (data.error && data.error.fields) || null;
          throw error;
        }
        showError("");
        if (data && data.message) { say(data.message); }
        if (data && data.action) { offerUndo(data.action); }
        return data;
      });
    }).catch(function (e) {
      if (!(onFail && onFail(e))) { showError(e.message); }
      return null;
    }).finally(function () { busy = false; shown = {}; refresh(); });
  }
  function api(method, path, body) { return request(method, forumApi + path, body); }
  function say(message) { document.getElementById("action-result").textContent = message || ""; }

  // Undo: the last live action's toast, for as long as the server keeps it undoable
  // (its expires_at, on the server's clock). Any producer's page shows it.
  var toast = document.getElementById("undo-toast");
  var undoable = null;  // { id, message, expires_at }
  if (toast.getAttribute("data-action-id")) {
    undoable = {
      id: parseInt(toast.getAttribute("data-action-id"), 10),
      message: document.getElementById("undo-message").textContent.replace(/\.$/, ""),
      expires_at: toast.getAttribute("data-expires-at")
    };
  }
  function offerUndo(action) {
    if (!action || (undoable && undoable.id === action.id)) { return; }
    undoable = action;
    document.getElementById("undo-message").textContent = action.message + ".";
    document.getElementById("undo-form").setAttribute("action", "/producer/forums/" + encodeURIComponent(slug) + "/actions/" + action.id + "/undo");
    tickUndo();
  }
  function tickUndo() {
    var left = undoable ? B.parseTime(undoable.expires_at) - B.serverNow() : 0;
    if (!undoable || left <= 0) {
      if (!toast.hidden) {
        // Keep the cursor on the page, not on a button about to vanish.
        if (toast.contains(document.activeElement)) { document.querySelector('[data-action="next"]').focus(); }
        toast.hidden = true;
      }
      undoable = null;
      return;
    }
    toast.hidden = false;
    var text = Math.ceil(left / 1000) + " s left to undo";
    var node = document.getElementById("undo-left");
    if (node.textContent !== text) { node.textContent = text; }
  }
  function undo() {
    if (!undoable) { say("Nothing to undo."); return; }
    var id = undoable.id;
    undoable = null;
    tickUndo();
    api("POST", "/actions/" + id + "/undo");
  }
  document.getElementById("undo-form").addEventListener("submit", function (event) { event.preventDefault(); undo(); });
  function callApi(method, callId, path, body) {
    return request(method, "/api/v1/calls/" + encodeURIComponent(callId) + path, body);
  }

  function button(label, handler, attrs) {
    var b = el("button", null, label);
    b.type = "button";
    Object.keys(attrs || {}).forEach(function (name) { b.setAttribute(name, attrs[name]); });
    b.addEventListener("click", handler);
    return b;
  }
  function isLive(call) { return !!call && LIVE_STATES[call.state] === true; }
  function dropButton(call, who) {
    return button("Drop", function () {
      // Hanging up cannot be undone (nobody can be put back on a line): ask first.
      if (window.confirm("Drop the call from " + who + "? They are thanked and hung up. This cannot be undone.")) {
        callApi("POST", call.id, "/hangup");
      }
    }, { "data-call-action": "drop", "data-call-id": call.id, "class": "danger" });
  }
  function callBackButton(s) {
    return button("Call back", function () {
      request("POST", "/api/v1/signups/" + encodeURIComponent(s.id) + "/call");
    }, { "data-call-action": "callback", "data-signup-id": s.id });
  }

  // A call's line (static/boards.js), with what only producers need: call-back, errors.
  function lineState(call) {
    var box = B.lineState(call, "span");
    if (call && call.direction === "callback") { box.appendChild(el("span", "small line-direction", "call-back")); }
    if (call && call.error) { box.appendChild(el("span", "line-error", call.error)); }
    return box;
  }
  function lineRow() { return el("div", "line-row"); }

  function summary(s, position, tag) {
    var li = el(tag || "li");
    li.dataset.id = s.id;
    if (s.call) { li.dataset.callId = s.call.id; }
    li.dataset.lineState = s.call ? s.call.state : "none";
    var head = el("div");
    if (position) { head.appendChild(el("strong", null, position + ". ")); }
    head.appendChild(B.bidi("strong", "name", s.name));
    if (s.pronunciation) {
      var sayAs = el("span", "say", " say ");
      sayAs.appendChild(B.bidi("q", "pronunciation", s.pronunciation));
      head.appendChild(sayAs);
    }
    head.appendChild(document.createTextNode(", "));
    head.appendChild(B.bidi("span", "location", s.location));
    li.appendChild(head);
    li.appendChild(B.bidi("div", "text", s.question.length > 280 ? s.question.slice(0, 280) + "…" : s.question));
    li.appendChild(el("div", "meta", [s.stance || "", s.rating ? "★".repeat(s.rating) : "", s.phone || ""].filter(Boolean).join(" · ")));
    return li;
  }

  // How to say a caller's name, for the presenter's board: producers write it here.
  function pronunciationForm(s) {
    var form = el("form", "pronunciation-form");
    form.setAttribute("data-signup-id", s.id);
    var label = el("label", "small", "Say it as ");
    var input = el("input");
    input.type = "text";
    input.name = "pronunciation";
    input.maxLength = 200;
    input.autocomplete = "off";
    input.placeholder = "e.g. YAH-ma-dah HAH-na-ko";
    input.value = s.pronunciation || "";
    input.setAttribute("dir", "auto");
    label.appendChild(input);
    form.appendChild(label);
    var save = el("button", null, "Save");
    save.type = "submit";
    form.appendChild(save);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.contains(document.activeElement)) { document.activeElement.blur(); }
      request("PUT", "/api/v1/signups/" + encodeURIComponent(s.id) + "/pronunciation", { pronunciation: input.value.trim() || null })
        .then(function (data) { if (data) { say("Pronunciation saved for " + data.name + "."); } });
    });
    return form;
  }

  function drawHead(q) {
    var state = document.getElementById("forum-state");
    state.textContent = q.status;
    state.className = "badge " + q.status;
    B.drawShow(document.getElementById("queue-show"), q);
    document.getElementById("average-call").textContent = mmss((q.average_call_seconds || 0) * 1000);
    var studio = document.getElementById("studio-line");
    studio.replaceChildren(document.createTextNode("Studio line "));
    studio.appendChild(q.studio ? lineState(q.studio) : el("span", "badge line-state none", "not connected"));
    if (!q.studio || q.studio.state === "completed" || q.studio.state === "failed") {
      studio.appendChild(button("Redial studio", function () { api("POST", "/studio"); }, { "data-call-action": "redial" }));
    }
  }

  function drawOnAir(q) {
    var onAir = document.getElementById("on-air");
    var over = q.status !== "open" && q.status !== "live";
    document.getElementById("on-air-title").textContent = over ? "The show is over" : "On air";
    if (!q.on_air) {
      onAir.replaceChildren(over ? el("p", "show-over", q.status === "cancelled" ? "Show cancelled" : "Show closed") : el("p", "muted", "Nobody on air"));
      return;
    }
    var s = q.on_air;
    var card = summary(s, null, "div");
    var row = lineRow();
    row.appendChild(lineState(s.call));
    if (!(s.call && s.call.state === "on_air") && s.on_air_at) {
      var since = el("span", "on-air-time", "on air ");
      since.appendChild(timer(s.on_air_at));
      row.appendChild(since);
    }
    card.appendChild(row);
    var actions = el("div", "actions");
    var call = s.call;
    if (call && call.state === "on_air") {
      actions.appendChild(button(call.muted ? "Unmute" : "Mute", function () {
        callApi("PATCH", call.id, "", { muted: !call.muted });
      }, { "data-call-action": "mute", "data-call-id": call.id, "aria-pressed": String(!!call.muted) }));
      actions.appendChild(button(call.held ? "Resume" : "Hold", function () {
        callApi("PATCH", call.id, "", { held: !call.held });
      }, { "data-call-action": "hold", "data-call-id": call.id, "aria-pressed": String(!!call.held) }));
    }
    if (isLive(call)) { actions.appendChild(dropButton(call, s.name)); }
    if (!call) { actions.appendChild(callBackButton(s)); }
    if (actions.childNodes.length) { card.appendChild(actions); }
    card.appendChild(pronunciationForm(s));
    onAir.replaceChildren(card);
  }

  function drawWaiting(q) {
    document.getElementById("waiting-count").textContent = q.total_waiting;
    var list = document.getElementById("waiting");
    list.replaceChildren();
    q.waiting.forEach(function (s, i) {
      var li = summary(s, i + 1);
      var row = lineRow();
      row.appendChild(lineState(s.call));
      if (s.expected_on_air_at) {
        var expected = el("span", "expected", "expected ~" + hhmm(s.expected_on_air_at));
        expected.setAttribute("data-at", s.expected_on_air_at);
        row.appendChild(expected);
      }
      if (s.will_make_it === false) {
        row.appendChild(el("span", "badge wont-make-it", "won't make it"));
        li.classList.add("late");
      }
      li.appendChild(row);
      var actions = el("div", "actions");
      if (i > 0) { actions.appendChild(button("↑", function () { api("POST", "/queue", { signup_id: s.id, position: i }); }, { "data-queue-action": "up", "aria-label": "Move up" })); }
      if (i < q.total_waiting - 1) { actions.appendChild(button("↓", function () { api("POST", "/queue", { signup_id: s.id, position: i + 2 }); }, { "data-queue-action": "down", "aria-label": "Move down" })); }
      var to = el("input"); to.type = "number"; to.min = 1; to.placeholder = "pos."; to.setAttribute("aria-label", "Move to position");
      actions.appendChild(to);
      actions.appendChild(button("Move", function () { var p = parseInt(to.value, 10); if (p > 0) { api("POST", "/queue", { signup_id: s.id, position: p }); } }, { "data-queue-action": "move" }));
      actions.appendChild(button("Remove", function () { api("DELETE", "/queue/" + s.id); }, { "data-queue-action": "remove" }));
      actions.appendChild(button("On air now", function () { api("POST", "/queue/next", { signup_id: s.id }); }, { "data-action": "on-air-now", "data-queue-action": "on-air-now" }));
      if (!isLive(s.call)) { actions.appendChild(callBackButton(s)); }
      if (isLive(s.call)) { actions.appendChild(dropButton(s.call, s.name)); }
      li.appendChild(actions);
      li.appendChild(pronunciationForm(s));
      list.appendChild(li);
    });
    if (!q.waiting.length) { list.appendChild(el("li", "muted", "Nobody waiting")); }
    if (q.total_waiting > q.waiting.length) {
      list.appendChild(el("li", "muted more-waiting", "… and " + (q.total_waiting - q.waiting.length) + " more waiting"));
    }
  }

  // Screening a caller live: a small form on their card. What the producer typed lives in
  // ``drafts``, so a redraw (or a refused submit) never loses it.
  function screenForm(u) {
    var d = drafts[u.id];
    if (!d) { d = drafts[u.id] = { name: "", location: "", question: "", stance: "", position: "", sms_consent: null, publish_consent: null, errors: {}, typed: false }; }
    if (!d.typed && u.name) { d.name = u.name; }  // known by their number: prefill the name
    var form = el("form", "screen live-screen");
    form.noValidate = true;
    form.setAttribute("data-call-id", u.id);
    var errors = d.errors || {};
    function labelled(field, text, control, cls) {
      var label = el("label", cls || null);
      label.appendChild(document.createTextNode(text));
      control.name = field;
      label.appendChild(control);
      if (errors[field]) {
        label.classList.add("has-error");
        control.setAttribute("aria-invalid", "true");
        label.appendChild(el("span", "field-error", errors[field]));
      }
      form.appendChild(label);
      return control;
    }
    function text(field, label, tag, cls) {
      var control = el(tag || "input");
      if (!tag) { control.type = "text"; control.autocomplete = "off"; }
      control.value = d[field];
      control.setAttribute("dir", "auto");  // a listener's words, in their own direction
      control.addEventListener("input", function () { d[field] = control.value; d.typed = true; });
      return labelled(field, label, control, cls);
    }
    text("name", "Name");
    text("location", "Location");
    var question = text("question", "Question", "textarea", "grow");
    question.rows = 2;
    var stance = el("select");
    [""].concat(STANCES).forEach(function (value) {
      var option = el("option", null, value || "stance…");
      option.value = value;
      stance.appendChild(option);
    });
    stance.value = d.stance;
    stance.addEventListener("change", function () { d.stance = stance.value; });
    labelled("stance", "Stance", stance);
    var position = el("input");
    position.type = "number"; position.min = 1; position.placeholder = "last"; position.className = "short";
    position.value = d.position;
    position.addEventListener("input", function () { d.position = position.value; });
    labelled("position", "Position", position, "short");
    // Consents: sent only when the producer ticks or unticks them on the phone; left
    // alone, a listener who signed up online keeps what they gave there. Each box is
    // labelled with the question to ask, as the ledger records it: ticked means "yes".
    [["sms_consent", asked.sms_consent], ["publish_consent", asked.publish_consent]].forEach(function (pair) {
      var box = el("input");
      box.type = "checkbox";
      box.name = pair[0];
      box.checked = d[pair[0]] === true;
      box.addEventListener("change", function () { d[pair[0]] = box.checked; });
      var label = el("label", "check");
      label.title = "Tick only if they agreed on the phone; left alone, what they gave online stands.";
      label.appendChild(box);
      label.appendChild(document.createTextNode(pair[1]));
      if (errors[pair[0]]) { label.appendChild(el("span", "field-error", errors[pair[0]])); }
      form.appendChild(label);
    });
    var known = {};
    ["name", "location", "question", "stance", "position", "sms_consent", "publish_consent"].forEach(function (f) { known[f] = true; });
    var other = Object.keys(errors).filter(function (f) { return !known[f]; });
    var submit = el("button", "primary", "Add to queue");
    submit.type = "submit";
    submit.setAttribute("data-call-action", "screen");
    form.appendChild(submit);
    if (other.length) {
      form.appendChild(el("p", "field-error form-error", other.map(function (f) { return f + ": " + errors[f]; }).join(" · ")));
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { name: d.name.trim(), location: d.location.trim(), question: d.question.trim(), queue: true };
      if (d.stance) { body.stance = d.stance; }
      if (d.sms_consent !== null) { body.sms_consent = d.sms_consent; }
      if (d.publish_consent !== null) { body.publish_consent = d.publish_consent; }
      var p = parseInt(d.position, 10);
      if (p > 0) { body.position = p; }
      d.errors = {};
      // Let the list redraw (it does not under a focused field) to show the outcome.
      if (form.contains(document.activeElement)) { document.activeElement.blur(); }
      request("POST", "/api/v1/calls/" + encodeURIComponent(u.id) + "/screen", body, function (e) {
        if (e.status !== 422 || !e.fields) { return false; }
        d.errors = e.fields;
        var first = Object.keys(e.fields).filter(function (f) { return known[f]; })[0];
        if (first) { focusAfterDraw = [u.id, first]; }
        return true;
      }).then(function (data) { if (data) { delete drafts[u.id]; } });
    });
    return form;
  }

  function drawUnscreened(q) {
    var list = document.getElementById("unscreened");
    document.getElementById("unscreened-count").textContent = q.unscreened.length;
    var present = {};
    list.replaceChildren();
    q.unscreened.forEach(function (u) {
      present[u.id] = true;
      var li = el("li", "unscreened-call");
      li.dataset.callId = u.id;
      li.dataset.lineState = u.state;
      var head = el("div");
      head.appendChild(el("strong", "number", u.number || "Number withheld"));
      if (u.caller_unverified) {
        head.appendChild(document.createTextNode(" "));
        head.appendChild(el("span", "badge warn", "caller ID not verified"));
      }
      if (u.name) {
        head.appendChild(document.createTextNode(" · signed up as "));
        head.appendChild(B.bidi("strong", "name", u.name));
      }
      li.appendChild(head);
      var row = lineRow();
      row.appendChild(lineState(u));
      if (isLive(u)) { row.appendChild(dropButton(u, u.name || u.number || "this caller")); }
      li.appendChild(row);
      li.appendChild(screenForm(u));
      list.appendChild(li);
    });
    Object.keys(drafts).forEach(function (id) { if (!present[id]) { delete drafts[id]; } });
    if (!q.unscreened.length) { list.appendChild(el("li", "muted", "Nobody on the line to screen")); }
    if (focusAfterDraw) {
      var target = list.querySelector('form[data-call-id="' + focusAfterDraw[0] + '"] [name="' + focusAfterDraw[1] + '"]');
      focusAfterDraw = null;
      if (target) { target.focus(); }
    }
  }

  function drawApproved(page) {
    var list = document.getElementById("approved");
    list.replaceChildren();
    page.items.forEach(function (s) {
      var li = summary(s);
      var row = lineRow();
      row.appendChild(lineState(s.call));
      li.appendChild(row);
      var actions = el("div", "actions");
      actions.appendChild(button("Add to queue", function () { api("POST", "/queue", { signup_id: s.id }); }, { "data-queue-action": "add" }));
      actions.appendChild(button("Add first", function () { api("POST", "/queue", { signup_id: s.id, position: 1 }); }, { "data-queue-action": "add-first" }));
      actions.appendChild(isLive(s.call) ? dropButton(s.call, s.name) : callBackButton(s));
      li.appendChild(actions);
      list.appendChild(li);
    });
    if (!page.items.length) { list.appendChild(el("li", "muted", "No approved signups waiting to be queued")); }
  }

  // Callers who have been on air: any can be put back in the queue (last, or first).
  function drawDone(page) {
    var list = document.getElementById("done");
    list.replaceChildren();
    page.items.forEach(function (s) {
      var li = summary(s);
      var actions = el("div", "actions");
      actions.appendChild(button("Back in the queue", function () { api("POST", "/queue", { signup_id: s.id }); }, { "data-queue-action": "requeue" }));
      actions.appendChild(button("Back first", function () { api("POST", "/queue", { signup_id: s.id, position: 1 }); }, { "data-queue-action": "requeue-first" }));
      li.appendChild(actions);
      list.appendChild(li);
    });
    if (!page.items.length) { list.appendChild(el("li", "muted", "Nobody has been on air yet")); }
  }

  // What each part of the page shows; it is redrawn only when that changes. The server's
  // clock and what follows from it every second are left out: timers tick by themselves.
  function key(value) {
    return JSON.stringify(value, function (name, v) {
      if (name === "now" || name === "remaining_seconds") { return undefined; }
      if (name === "expected_on_air_at") { return hhmm(v); }
      return v;
    });
  }
  var sections = [
    { name: "head", node: "lines", draw: drawHead, pick: function (q) { return [q.status, q.starts_at, q.ends_at, q.average_call_seconds, q.studio]; } },
    { name: "onair", node: "on-air", draw: drawOnAir, pick: function (q) { return [q.on_air, q.status]; } },
    { name: "unscreened", node: "unscreened", draw: drawUnscreened, pick: function (q) { return q.unscreened; } },
    { name: "waiting", node: "waiting", draw: drawWaiting, pick: function (q) { return [q.waiting, q.total_waiting]; } }
  ];
  function typingIn(node) {
    var active = document.activeElement;
    return !!active && node.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  // Focus stays where it was: a redraw replaces buttons and fields, so the one with the
  // cursor is found again by what it is (its caller and its action) and focused.
  function focusKey() {
    var active = document.activeElement;
    if (!active || active === document.body || !root.contains(active)) { return null; }
    var item = active.closest("[data-id], [data-call-id]");
    if (!item || item === active) { return null; }
    var what = ["data-queue-action", "data-call-action", "data-action", "name"].filter(function (a) { return active.hasAttribute(a); })[0];
    if (!what) { return null; }
    var list = item.parentNode && item.parentNode.id;
    return { list: list, item: item.getAttribute("data-id") || item.getAttribute("data-call-id"), attr: what, value: active.getAttribute(what) };
  }
  function refocus(k) {
    if (!k || (document.activeElement && document.activeElement !== document.body && root.contains(document.activeElement))) { return; }
    var list = k.list && document.getElementById(k.list);
    if (!list) { return; }
    var items = list.querySelectorAll('[data-id="' + k.item + '"], [data-call-id="' + k.item + '"]');
    for (var i = 0; i < items.length; i++) {
      var target = items[i].querySelector("[" + k.attr + '="' + k.value + '"]');
      if (target) { target.focus(); return; }
    }
    // The caller left this list (put on air, removed): keep the cursor in the list.
    var first = list.querySelector("button, input");
    if (first) { first.focus(); }
  }
  function draw(q, approved, done) {
    var focused = focusKey();
    last = q;
    if (q.undo) { offerUndo(q.undo); }
    sections.forEach(function (section) {
      var k = key(section.pick(q));
      // Do not redraw under a producer who is typing: the field would be replaced.
      if (k !== shown[section.name] && !typingIn(document.getElementById(section.node))) {
        section.draw(q);
        shown[section.name] = k;
      }
    });
    var k = key(approved);
    if (k !== shown.approved && !typingIn(document.getElementById("approved"))) { drawApproved(approved); shown.approved = k; }
    k = key(done);
    if (k !== shown.done && !typingIn(document.getElementById("done"))) { drawDone(done); shown.done = k; }
    refocus(focused);
    var live = q.status === "live";
    Array.prototype.forEach.call(root.querySelectorAll("[data-action]"), function (b) {
      b.disabled = !live;
      b.title = live ? "" : "Callers go on air only while the forum is live";
    });
  }

  function refresh() {
    var sent = Date.now();
    var queued = B.getBoard(queueUrl).then(function (answer) {
      if (answer.fresh) { learnClock(sent, Date.now(), answer.body.now); }
      return answer.body;
    });
    var approved = B.getBoard(approvedUrl).then(function (answer) { return answer.body; });
    var done = B.getBoard(doneUrl).then(function (answer) { return answer.body; });
    return Promise.all([queued, approved, done]).then(function (all) {
      if (!busy) { draw(all[0], all[1], all[2]); }
      tick();
      document.getElementById("queue-updated").textContent = "Live · updated " + new Date().toLocaleTimeString();
    }).catch(function (e) { document.getElementById("queue-updated").textContent = "Connection lost, retrying… (" + e.message + ")"; });
  }
  // Next and finish say what they would do when it is not the obvious thing, and ask.
  function next() {
    var q = last;
    if (q && q.total_waiting === 0) {
      if (!q.on_air) { say("Nobody is waiting and nobody is on air: nothing to do."); return; }
      if (!window.confirm("Nobody is waiting. End " + q.on_air.name + "'s call, with nobody on air after them?")) { say("Nothing changed."); return; }
      api("POST", "/queue/finish");
      return;
    }
    var head = q && q.waiting[0];
    if (head && !isLive(head.call) && !window.confirm(head.name + " is not on the line. Put them on air anyway? You can call them back.")) {
      say("Nothing changed.");
      return;
    }
    api("POST", "/queue/next");
  }
  function finish() {
    if (last && !last.on_air) { say("Nobody is on air: nothing to finish."); return; }
    api("POST", "/queue/finish");
  }
  document.querySelector('[data-action="next"]').addEventListener("click", next);
  document.querySelector('[data-action="finish"]').addEventListener("click", finish);

  // Keyboard shortcuts (listed on the page). Never while typing, never with a modifier.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
    var target = event.target;
    if (target && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable)) { return; }
    var key = event.key.toLowerCase();
    var control = null;
    if (key === "n") { control = document.querySelector('[data-action="next"]'); }
    else if (key === "f") { control = document.querySelector('[data-action="finish"]'); }
    if (control) {
      event.preventDefault();
      if (!control.disabled) { control.click(); } else { say(control.title || "Not now."); }
      return;
    }
    if (key === "u") { event.preventDefault(); undo(); return; }
    if (key === "g") {
      var goLive = document.getElementById("go-live");
      if (goLive) {
        event.preventDefault();
        goLive.open = true;
        var choice = goLive.querySelector("input[checked], input");
        if (choice) { choice.focus(); }
      }
      return;
    }
    if (key === "c") {
      var close = document.getElementById("close-form");
      if (close) { event.preventDefault(); close.requestSubmit(); }
    }
  });
  setInterval(tickUndo, 250);
  setInterval(tick, 250);
  (function loop() { refresh().finally(function () { setTimeout(loop, every); }); })();
})();
