// The boards' clock: timers count from the server's time (each queue JSON carries "now"),
// not this browser's, so they are right whatever the browser's clock says.
window.PhoneinClock = (function () {
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
  return { learn: learn, mmss: mmss, hhmm: hhmm, setTimer: setTimer };
})();
