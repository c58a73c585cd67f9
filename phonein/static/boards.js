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
  // A count down of any length: "04:59", "2:04:59", "3 d 02:04" (never "2934:59").
  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 3600) { return mmss(ms); }
    if (s < 86400) { return Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60); }
    return Math.floor(s / 86400) + " d " + pad(Math.floor(s / 3600) % 24) + ":" + pad(Math.floor(s / 60) % 60);
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
    var text = since ? span(serverNow() - parseTime(since)) : until ? span(parseTime(until) - serverNow()) : "--:--";
    if (node.textContent !== text) { node.textContent = text; }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  // Listener-written text in an element of its own direction (Arabic, Hebrew, …), so a
  // right-to-left name or question is not scrambled in a left-to-right list.
  function bidi(tag, cls, text) {
    var node = el(tag, cls, text);
    node.setAttribute("dir", "auto");
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
  // The show's clock, on both boards: the state (open / live / closed), the wall clock,
  // and "starts in" before the show or "time left" during it, which says in words (not
  // colour alone) when time runs short. It ticks between polls (tickShow).
  var STATE_NAMES = { open: "Open · not started", live: "Live", closed: "Closed", published: "Closed", cancelled: "Cancelled" };
  var LEVEL_NOTES = { ok: "", low: "under 10 minutes left", last: "last 2 minutes", over: "time is up" };
  function wall() {
    var d = new Date(serverNow());
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function drawShow(node, q) {
    node.replaceChildren();
    node.setAttribute("data-state", q.status);
    var state = el("span", "badge show-state " + q.status, STATE_NAMES[q.status] || q.status);
    state.setAttribute("data-state", q.status);
    node.appendChild(state);
    var clock = el("span", "stat", "Clock ");
    clock.appendChild(el("strong", "wall-clock", wall()));
    node.appendChild(clock);
    var stat = el("span", "stat countdown-stat");
    if (q.status === "open" || q.status === "live") {
      var open = q.status === "open";
      stat.appendChild(el("span", "countdown-label", open ? "Starts in " : "Time left "));
      var count = el("strong", "timer countdown");
      count.setAttribute("data-until", open ? q.starts_at : q.ends_at);
      stat.appendChild(count);
      stat.appendChild(el("span", "countdown-note"));
    } else {
      stat.appendChild(el("strong", "show-over", q.status === "cancelled" ? "Show cancelled" : "Show closed"));
    }
    node.appendChild(stat);
    tickShow(node);
  }
  function tickShow(node) {
    var w = node.querySelector(".wall-clock");
    if (w) { var t = wall(); if (w.textContent !== t) { w.textContent = t; } }
    var count = node.querySelector(".countdown");
    if (!count) { node.removeAttribute("data-level"); return; }
    setTimer(count);
    var left = parseTime(count.getAttribute("data-until")) - serverNow();
    var level = "ok";
    if (node.getAttribute("data-state") === "live") {
      level = left <= 0 ? "over" : left <= 120000 ? "last" : left <= 600000 ? "low" : "ok";
    }
    if (node.getAttribute("data-level") !== level) { node.setAttribute("data-level", level); }
    var note = node.querySelector(".countdown-note");
    var text = LEVEL_NOTES[level] ? " (" + LEVEL_NOTES[level] + ")" : "";
    if (node.getAttribute("data-state") === "open" && left <= 0) { text = " (starting now)"; }
    if (note && note.textContent !== text) { note.textContent = text; }
  }
  return {
    drawShow: drawShow, tickShow: tickShow, bidi: bidi, span: span, serverNow: serverNow, parseTime: parseTime,
    getBoard: getBoard, learn: learn, mmss: mmss, hhmm: hhmm, setTimer: setTimer,
    el: el, timer: timer, tickAll: tickAll, lineState: lineState
  };
})();
