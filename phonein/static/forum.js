// Fill the listener's time zone, preselect the country of that zone, label countries in
// the browser's language, and show forum times in the visitor's own zone.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
  var tz = document.getElementById("timezone");
  if (tz && !tz.value) { tz.value = zone; }

  var country = document.getElementById("country");
  if (country) {
    var names = null;
    try { names = new Intl.DisplayNames([navigator.language || "en"], { type: "region" }); } catch (e) { /* keep server labels */ }
    if (names) {
      Array.prototype.forEach.call(country.options, function (option) {
        if (!option.value) { return; }
        var code = option.textContent.match(/\(\+\d+\)$/);
        var label = names.of(option.value);
        if (label) { option.textContent = label + (code ? " " + code[0] : ""); }
      });
    }
    if (!country.value) {
      var map = JSON.parse(country.getAttribute("data-zone-countries") || "{}");
      var guess = map[zone] || ((navigator.language || "").split("-")[1] || "").toUpperCase();
      if (guess && country.querySelector('option[value="' + guess + '"]')) { country.value = guess; }
    }
  }

  // After a rejected submit, take the listener to what needs fixing.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  Array.prototype.forEach.call(document.querySelectorAll(".local-time"), function (el) {
    var when = new Date(el.getAttribute("data-utc"));
    if (isNaN(when)) { return; }
    el.textContent = when.toLocaleString(undefined, {
      weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    }) + (zone ? " (" + zone + ")" : "");
    el.hidden = false;
  });
})();
