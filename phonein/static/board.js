// Presenter board: poll the queue and redraw when its version changes.
(function () {
  "use strict";
  var root = document.getElementById("board");
  var url = root.getAttribute("data-queue-url");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
  var shown = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function caller(s) {
    var box = el("div", "caller");
    box.appendChild(el("span", "name", s.name));
    box.appendChild(document.createTextNode(", "));
    box.appendChild(el("span", "location", s.location));
    box.appendChild(el("div", "text", s.question));
    return box;
  }
  function draw(q) {
    var onAir = document.getElementById("board-on-air");
    onAir.replaceChildren(q.on_air ? caller(q.on_air) : el("p", "muted", "Nobody on air"));
    var next = document.getElementById("board-next");
    next.replaceChildren();
    q.waiting.slice(0, 3).forEach(function (s) { var li = el("li"); li.appendChild(caller(s)); next.appendChild(li); });
    if (!q.waiting.length) { next.appendChild(el("li", "muted", "Nobody waiting")); }
  }
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (q) {
        var key = q.version + ":" + (q.on_air ? q.on_air.id : "") + ":" + q.waiting.map(function (s) { return s.id + s.updated_at; }).join(",");
        if (key !== shown) { draw(q); shown = key; }
        document.getElementById("board-status").textContent = "";
      })
      .catch(function (e) { document.getElementById("board-status").textContent = "Connection lost, retrying… (" + e.message + ")"; })
      .finally(function () { setTimeout(tick, every); });
  }
  tick();
})();
