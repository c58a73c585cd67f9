// Fill the listener's time zone, preselect the country of that zone, and show forum times
// in the visitor's own zone.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
  var tz = document.getElementById("timezone");
  if (tz && !tz.value) { tz.value = zone; }

  // The server names and sorts the countries for the page's language.
  var country = document.getElementById("country");
  if (country) {
    if (!country.value) {
      var map = JSON.parse(country.getAttribute("data-zone-countries") || "{}");
      var guess = map[zone] || ((navigator.language || "").split("-")[1] || "").toUpperCase();
      if (guess && country.querySelector('option[value="' + guess + '"]')) { country.value = guess; }
    }
  }

  // After a rejected submit, take the listener to what needs fixing.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // The visitor's own time, in the page's language, when their zone is not the forum's.
  // The zone is named by its region ("heure d’Europe centrale"), never an ID or offset.
  var lang = (document.documentElement.lang || "en") + "-u-nu-latn";
  Array.prototype.forEach.call(document.querySelectorAll(".local-time"), function (el) {
    var when = new Date(el.getAttribute("data-utc"));
    if (isNaN(when) || !zone || zone === el.getAttribute("data-zone")) { return; }
    var text;
    try {
      text = when.toLocaleString(lang, {
        weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit",
        timeZoneName: "longGeneric"
      });
    } catch (e) {
      text = when.toLocaleString(lang, {
        weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit"
      });
    }
    el.textContent = (el.getAttribute("data-label") || "{time}").replace("{time}", text);
    el.hidden = false;
  });
})();
