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
  var el = B.el, mmss = B.mmss, hhmm = B.hhmm, learnClock = B.learn;
  var timer = B.timer;
  function tick() { B.tickAll(root); B.tickShow(document.getElementById("board-show")); }
  function lineState(call) { return B.lineState(call, "div"); }
  var bidi = B.bidi;
  var STANCE_NAMES = { "for": "for", against: "against", neutral: "neutral", other: "other view" };
  // A caller as the presenter reads them: name (and how to say it), place, stance, question.
  // Everything the listener (or a producer) wrote is text in its own direction.
  function caller(s) {
    var box = el("div", "caller");
    box.appendChild(bidi("span", "name", s.name));
    if (s.pronunciation) {
      var say = el("span", "say", " say ");
      say.appendChild(bidi("q", "pronunciation", s.pronunciation));
      box.appendChild(say);
    }
    box.appendChild(document.createTextNode(", "));
    box.appendChild(bidi("span", "location", s.location));
    if (s.stance) {
      box.appendChild(document.createTextNode(" "));
      box.appendChild(el("span", "badge stance " + s.stance, "Stance: " + (STANCE_NAMES[s.stance] || s.stance)));
    }
    box.appendChild(bidi("div", "text", s.question));
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
    } else if (q.status === "open" || q.status === "live") {
      onAir.replaceChildren(el("p", "muted", "Nobody on air"));
    } else {
      onAir.replaceChildren(el("p", "show-over", q.status === "cancelled" ? "Show cancelled" : "Show closed"));
    }
    var over = q.status !== "open" && q.status !== "live";
    document.getElementById("board-now-title").textContent = over ? "The show is over" : "On air now";
    B.drawShow(document.getElementById("board-show"), q);
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
