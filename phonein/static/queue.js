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
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
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
  var el = B.el, mmss = B.mmss, hhmm = B.hhmm, setTimer = B.setTimer, learnClock = B.learn;
  var timer = B.timer;
  function tick() { B.tickAll(root); }

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
        return data;
      });
    }).catch(function (e) {
      if (!(onFail && onFail(e))) { showError(e.message); }
      return null;
    }).finally(function () { busy = false; shown = {}; refresh(); });
  }
  function api(method, path, body) { return request(method, forumApi + path, body); }
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
      if (window.confirm("Drop the call from " + who + "? They are thanked and hung up.")) {
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
    head.appendChild(el("strong", "name", s.name));
    head.appendChild(document.createTextNode(", " + s.location));
    li.appendChild(head);
    li.appendChild(el("div", "text", s.question.length > 280 ? s.question.slice(0, 280) + "…" : s.question));
    li.appendChild(el("div", "meta", [s.stance || "", s.rating ? "★".repeat(s.rating) : "", s.phone || ""].filter(Boolean).join(" · ")));
    return li;
  }

  function drawHead(q) {
    var state = document.getElementById("forum-state");
    state.textContent = q.status;
    state.className = "badge " + q.status;
    var remaining = document.getElementById("remaining");
    remaining.setAttribute("data-until", q.ends_at);
    setTimer(remaining);
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
    if (!q.on_air) { onAir.replaceChildren(el("p", "muted", "Nobody on air")); return; }
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
    // alone, a listener who signed up online keeps what they gave there.
    [["sms_consent", "SMS OK"], ["publish_consent", "Publish OK"]].forEach(function (pair) {
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
        head.appendChild(el("strong", "name", u.name));
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
    { name: "head", node: "lines", draw: drawHead, pick: function (q) { return [q.status, q.ends_at, q.average_call_seconds, q.studio]; } },
    { name: "onair", node: "on-air", draw: drawOnAir, pick: function (q) { return q.on_air; } },
    { name: "unscreened", node: "unscreened", draw: drawUnscreened, pick: function (q) { return q.unscreened; } },
    { name: "waiting", node: "waiting", draw: drawWaiting, pick: function (q) { return [q.waiting, q.total_waiting]; } }
  ];
  function typingIn(node) {
    var active = document.activeElement;
    return !!active && node.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  function draw(q, approved) {
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
    return Promise.all([queued, approved]).then(function (both) {
      if (!busy) { draw(both[0], both[1]); }
      tick();
      document.getElementById("queue-updated").textContent = "Live · updated " + new Date().toLocaleTimeString();
    }).catch(function (e) { document.getElementById("queue-updated").textContent = "Connection lost, retrying… (" + e.message + ")"; });
  }
  document.querySelector('[data-action="next"]').addEventListener("click", function () { api("POST", "/queue/next"); });
  document.querySelector('[data-action="finish"]').addEventListener("click", function () { api("POST", "/queue/finish"); });
  setInterval(tick, 250);
  (function loop() { refresh().finally(function () { setTimeout(loop, every); }); })();
})();
