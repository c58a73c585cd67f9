// Presenter board: poll the queue and redraw when anything in it changes; the timers
// (time on air, time holding, time left) tick every second between polls, from the
// server's clock.
(function () {
  "use strict";
  var root = document.getElementById("board");
  var url = root.getAttribute("data-queue-url");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 1000;
  var shown = null;

  // Shared with the producer's board (static/boards.js).
  var B = PhoneinBoards;
  var el = B.el, mmss = B.mmss, hhmm = B.hhmm, setTimer = B.setTimer, learnClock = B.learn;
  var timer = B.timer;
  function tick() { B.tickAll(root); }
  function lineState(call) { return B.lineState(call, "div"); }
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
    B.getBoard(url)
      .then(function (answer) {
        var q = answer.body;
        if (answer.fresh) { learnClock(sent, Date.now(), q.now); }
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
