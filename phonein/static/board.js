// Presenter board: poll the queue and redraw when anything in it changes; the timers
// (time on air, time holding, time left) tick every second between polls, from the
// server's clock.
(function () {
  "use strict";
  var root = document.getElementById("board");
  var url = root.getAttribute("data-queue-url");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
  var shown = null;
  var STATE_TEXT = { ringing: "ringing", holding: "holding", on_air: "on air", completed: "ended", failed: "failed" };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  // Time helpers shared with the other board (static/clock.js).
  var mmss = PhoneinClock.mmss, hhmm = PhoneinClock.hhmm, setTimer = PhoneinClock.setTimer;
  var learnClock = PhoneinClock.learn;
  function timer(since) {
    var node = el("span", "timer");
    node.setAttribute("data-since", since);
    setTimer(node);
    return node;
  }
  function tick() { Array.prototype.forEach.call(root.querySelectorAll(".timer"), setTimer); }

  function lineState(call) {
    var box = el("div", "line");
    var state = call ? (STATE_TEXT[call.state] ? call.state : "unknown") : "none";
    var badge = el("span", "badge line-state " + state);
    badge.setAttribute("data-state", state);
    badge.appendChild(document.createTextNode(call ? (STATE_TEXT[call.state] || call.state) : "not on the line"));
    var since = call && call.state === "holding" ? call.waiting_since : call && call.state === "on_air" ? call.on_air_since : null;
    if (since) {
      badge.appendChild(document.createTextNode(" "));
      badge.appendChild(timer(since));
    }
    box.appendChild(badge);
    if (call && call.muted) { box.appendChild(el("span", "badge flag muted", "muted")); }
    if (call && call.held) { box.appendChild(el("span", "badge flag held", "on hold")); }
    return box;
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
    if (q.on_air) {
      var now = caller(q.on_air);
      var line = lineState(q.on_air.call);
      // Time on air: the line's own, else since the producer put them on air.
      if (!(q.on_air.call && q.on_air.call.state === "on_air") && q.on_air.on_air_at) {
        var since = el("span", "on-air-time", "on air ");
        since.appendChild(timer(q.on_air.on_air_at));
        line.appendChild(since);
      }
      now.insertBefore(line, now.querySelector(".text"));
      onAir.replaceChildren(now);
    } else {
      onAir.replaceChildren(el("p", "muted", "Nobody on air"));
    }
    var next = document.getElementById("board-next");
    next.replaceChildren();
    q.waiting.slice(0, 3).forEach(function (s) {
      var li = el("li");
      li.dataset.id = s.id;
      li.dataset.lineState = s.call ? s.call.state : "none";
      var box = caller(s);
      var line = lineState(s.call);
      if (s.expected_on_air_at) { line.appendChild(el("span", "expected", "expected ~" + hhmm(s.expected_on_air_at))); }
      if (s.will_make_it === false) {
        line.appendChild(el("span", "badge wont-make-it", "won't make it"));
        li.classList.add("late");
      }
      box.insertBefore(line, box.querySelector(".text"));
      li.appendChild(box);
      next.appendChild(li);
    });
    if (!q.waiting.length) { next.appendChild(el("li", "muted", "Nobody waiting")); }
    var remaining = document.getElementById("board-remaining");
    remaining.setAttribute("data-until", q.ends_at);
    setTimer(remaining);
    document.getElementById("board-average").textContent = mmss((q.average_call_seconds || 0) * 1000);
  }
  // The whole JSON but for the server's clock and what follows from it every second
  // (the timers tick by themselves): any other change redraws.
  function key(q) {
    return JSON.stringify(q, function (name, v) {
      if (name === "now" || name === "remaining_seconds") { return undefined; }
      if (name === "expected_on_air_at") { return hhmm(v); }
      return v;
    });
  }
  function poll() {
    var sent = Date.now();
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (q) {
        learnClock(sent, Date.now(), q.now);
        var k = key(q);
        if (k !== shown) { draw(q); shown = k; }
        tick();
        document.getElementById("board-status").textContent = "";
      })
      .catch(function (e) { document.getElementById("board-status").textContent = "Connection lost, retrying… (" + e.message + ")"; })
      .finally(function () { setTimeout(poll, every); });
  }
  setInterval(tick, 250);
  poll();
})();
