// What the producer's queue board and the presenter's board share: elements, the clock
// (timers count from the server's time, which each queue JSON carries as "now", so they
// are right whatever this browser's clock says), and a call's line badge.
window.PhoneinBoards = (function () {
  "use strict";
  var clock = { offset: 0, samples: [] };  // server time minus this browser's time, in ms

  function parseTime(value) {
    // Date.parse only promises milliseconds: drop the server's extra digits.
    return value ? Date.parse(String(value).replace(/(\.\d{3})\d+/, "$1")) : NaN;
  }
  function learn(sent, received, now) {
    var at = parseTime(now);
    if (isNaN(at)) { return; }
    // The fastest recent round trip brackets the server's clock most tightly.
    clock.samples.push({ rtt: received - sent, offset: at - (sent + received) / 2 });
    if (clock.samples.length > 10) { clock.samples.shift(); }
    clock.offset = clock.samples.reduce(function (a, b) { return b.rtt < a.rtt ? b : a; }).offset;
  }
  function serverNow() { return Date.now() + clock.offset; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function mmss(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    return pad(Math.floor(s / 60)) + ":" + pad(s % 60);
  }
  function hhmm(value) {
    var at = parseTime(value);
    if (isNaN(at)) { return ""; }
    var d = new Date(at);
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  // A .timer node counts up from data-since or down to data-until.
  function setTimer(node) {
    var since = node.getAttribute("data-since");
    var until = node.getAttribute("data-until");
    var text = since ? mmss(serverNow() - parseTime(since)) : until ? mmss(parseTime(until) - serverNow()) : "--:--";
    if (node.textContent !== text) { node.textContent = text; }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function timer(since, until) {
    var node = el("span", "timer");
    if (since) { node.setAttribute("data-since", since); }
    if (until) { node.setAttribute("data-until", until); }
    setTimer(node);
    return node;
  }
  function tickAll(root) { Array.prototype.forEach.call(root.querySelectorAll(".timer"), setTimer); }

  var STATE_TEXT = { ringing: "ringing", holding: "holding", on_air: "on air", completed: "ended", failed: "failed" };
  // A call's line: its state (with how long it has held or been on air) and its flags,
  // in a ``tag`` element the board adds its own details to.
  function lineState(call, tag) {
    var box = el(tag, "line");
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
  // GET a board's JSON, sending back the ETag of the last answer: an unchanged board
  // answers 304 with no body (one cheap query on the server) and the last answer stands.
  // Its "now" is then old, so callers learn the clock only from fresh answers.
  var answers = {};  // url -> { etag, body }
  function getBoard(url) {
    var last = answers[url];
    var headers = { Accept: "application/json" };
    if (last) { headers["If-None-Match"] = last.etag; }
    // no-store: the browser's cache must neither answer for us nor add its own validators.
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (r) {
        if (r.status === 304 && last) { return { body: last.body, fresh: false }; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json().then(function (body) {
          var etag = r.headers.get("ETag");
          if (etag) { answers[url] = { etag: etag, body: body }; } else { delete answers[url]; }
          return { body: body, fresh: true };
        });
      });
  }
  return {
    getBoard: getBoard, learn: learn, mmss: mmss, hhmm: hhmm, setTimer: setTimer,
    el: el, timer: timer, tickAll: tickAll, lineState: lineState
  };
})();
