// Producer queue board: poll the queue and the approved list; act through the JSON API
// with the session cookie and the CSRF token.
(function () {
  "use strict";
  var root = document.getElementById("queue-board");
  var slug = root.getAttribute("data-slug");
  var queueUrl = root.getAttribute("data-queue-url");
  var approvedUrl = root.getAttribute("data-approved-url");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var shown = null;
  var busy = false;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function showError(message) {
    var box = document.getElementById("queue-error");
    box.textContent = message || "";
    box.hidden = !message;
  }
  function api(method, path, body) {
    busy = true;
    return fetch("/api/v1/forums/" + encodeURIComponent(slug) + path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || ("HTTP " + r.status)); }
        showError("");
        return data;
      });
    }).catch(function (e) { showError(e.message); })
      .finally(function () { busy = false; shown = null; refresh(); });
  }
  function summary(s, position, tag) {
    var li = el(tag || "li");
    li.dataset.id = s.id;
    var head = el("div");
    if (position) { head.appendChild(el("strong", null, position + ". ")); }
    head.appendChild(el("strong", "name", s.name));
    head.appendChild(document.createTextNode(", " + s.location));
    li.appendChild(head);
    li.appendChild(el("div", "text", s.question.length > 280 ? s.question.slice(0, 280) + "…" : s.question));
    li.appendChild(el("div", "meta", [s.stance || "", s.rating ? "★".repeat(s.rating) : "", s.phone || ""].filter(Boolean).join(" · ")));
    return li;
  }
  function button(label, handler) {
    var b = el("button", null, label);
    b.type = "button";
    b.addEventListener("click", handler);
    return b;
  }
  function drawQueue(q) {
    var onAir = document.getElementById("on-air");
    onAir.replaceChildren(q.on_air ? summary(q.on_air, null, "div") : el("p", "muted", "Nobody on air"));
    var live = q.status === "live";
    document.getElementById("forum-state").textContent = q.status;
    document.getElementById("forum-state").className = "badge " + q.status;
    Array.prototype.forEach.call(root.querySelectorAll("[data-action]"), function (b) {
      b.disabled = !live;
      b.title = live ? "" : "Callers go on air only while the forum is live";
    });
    document.getElementById("waiting-count").textContent = q.total_waiting;
    var list = document.getElementById("waiting");
    list.replaceChildren();
    q.waiting.forEach(function (s, i) {
      var li = summary(s, i + 1);
      var actions = el("div", "actions");
      if (i > 0) { actions.appendChild(button("↑", function () { api("POST", "/queue", { signup_id: s.id, position: i }); })); }
      if (i < q.waiting.length - 1) { actions.appendChild(button("↓", function () { api("POST", "/queue", { signup_id: s.id, position: i + 2 }); })); }
      var to = el("input"); to.type = "number"; to.min = 1; to.placeholder = "pos."; to.setAttribute("aria-label", "Move to position");
      actions.appendChild(to);
      actions.appendChild(button("Move", function () { var p = parseInt(to.value, 10); if (p > 0) { api("POST", "/queue", { signup_id: s.id, position: p }); } }));
      actions.appendChild(button("Remove", function () { api("DELETE", "/queue/" + s.id); }));
      li.appendChild(actions);
      list.appendChild(li);
    });
    if (!q.waiting.length) { list.appendChild(el("li", "muted", "Nobody waiting")); }
  }
  function drawApproved(page) {
    var list = document.getElementById("approved");
    list.replaceChildren();
    page.items.forEach(function (s) {
      var li = summary(s);
      var actions = el("div", "actions");
      actions.appendChild(button("Add to queue", function () { api("POST", "/queue", { signup_id: s.id }); }));
      actions.appendChild(button("Add first", function () { api("POST", "/queue", { signup_id: s.id, position: 1 }); }));
      li.appendChild(actions);
      list.appendChild(li);
    });
    if (!page.items.length) { list.appendChild(el("li", "muted", "No approved signups waiting to be queued")); }
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }
  function refresh() {
    return Promise.all([getJSON(queueUrl), getJSON(approvedUrl)]).then(function (both) {
      var key = JSON.stringify(both);
      // Do not redraw under a producer who is typing a position: the row would be replaced.
      var typing = root.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
      if (key !== shown && !busy && !typing) { drawQueue(both[0]); drawApproved(both[1]); shown = key; }
      document.getElementById("queue-updated").textContent = "Live · updated " + new Date().toLocaleTimeString();
    }).catch(function (e) { document.getElementById("queue-updated").textContent = "Connection lost, retrying… (" + e.message + ")"; });
  }
  document.querySelector('[data-action="next"]').addEventListener("click", function () { api("POST", "/queue/next"); });
  document.querySelector('[data-action="finish"]').addEventListener("click", function () { api("POST", "/queue/finish"); });
  (function loop() { refresh().finally(function () { setTimeout(loop, every); }); })();
})();
