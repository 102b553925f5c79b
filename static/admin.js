// The organizer console's small helpers. Every page works without this file.
(function () {
  "use strict";

  // Copy buttons beside read-only URLs.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy"));
    var note = document.querySelector('[data-copied-for="' + button.getAttribute("data-copy") + '"]');
    if (!input) return;
    var done = function () { if (note) note.textContent = "Copied."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { input.select(); });
    } else {
      input.select();
      try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
    }
  });

  // The new-poll form: the slug follows the title until the organizer types one.
  var slug = document.querySelector('input[data-from="title"]');
  var title = document.getElementById("title");
  if (slug && title) {
    var typed = slug.value !== "";
    var slugOf = function (text) {
      return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
        .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 80).replace(/-+$/, "");
    };
    slug.addEventListener("input", function () { typed = slug.value !== ""; });
    title.addEventListener("input", function () { if (!typed) slug.value = slugOf(title.value); });
  }

  // Time zones: without a chosen zone the server shows UTC; show the browser's zone instead.
  var browserZone = "";
  try { browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { browserZone = ""; }
  document.querySelectorAll('select[data-browser-tz="1"]').forEach(function (select) {
    if (browserZone && Array.prototype.some.call(select.options, function (o) { return o.value === browserZone; })) {
      select.value = browserZone;
    }
  });
  var browserIsUtc = /^(Etc\/)?(UTC|UCT|GMT|Universal|Zulu|Greenwich)(0|[+-]0)?$/.test(browserZone);
  function localTimes(root) {
    if (document.body.getAttribute("data-tz-auto") !== "1" || !browserZone) return;
    var parts = { weekday: "short", day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
    var format = new Intl.DateTimeFormat(undefined, parts);
    var precise = new Intl.DateTimeFormat(undefined, Object.assign({ second: "2-digit" }, parts));
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = (el.hasAttribute("data-seconds") ? precise : format).format(when);
      // A browser on UTC already reads UTC: the "(… UTC)" beside it would say it twice.
      var utc = el.nextElementSibling;
      if (browserIsUtc && utc && utc.classList.contains("utc")) utc.hidden = true;
    });
  }
  localTimes(document);

  // The live view: refresh the server-rendered fragment when the event stream says the
  // tally changed, or on a timer when there is no stream.
  var live = document.getElementById("live");
  if (!live) return;
  var url = live.getAttribute("data-fragment");
  var every = Math.max(1, parseFloat(live.getAttribute("data-refresh") || "5")) * 1000;
  var pageStatus = live.getAttribute("data-status");
  var announce = document.getElementById("live-announce");
  var busy = false, timer = null, lastTurnout = null;

  function refresh() {
    if (busy) return;
    busy = true;
    var wasOpen = {};
    live.querySelectorAll("details[id]").forEach(function (d) { wasOpen[d.id] = d.open; });
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        live.innerHTML = html;
        live.querySelectorAll("details[id]").forEach(function (d) { if (wasOpen[d.id]) d.open = true; });
        localTimes(live);
        var grid = live.querySelector("[data-status]");
        if (grid && grid.getAttribute("data-status") !== pageStatus) {
          var note = document.getElementById("status-changed");
          if (note) note.hidden = false;
        }
        var turnout = grid && grid.getAttribute("data-turnout");
        if (announce && turnout !== null && turnout !== lastTurnout && lastTurnout !== null) {
          announce.textContent = turnout + " ballots";
        }
        lastTurnout = turnout;
      })
      .catch(function () { /* keep the last view; the next tick tries again */ })
      .then(function () { busy = false; });
  }
  function pollEvery(ms) { clearInterval(timer); timer = setInterval(refresh, ms); }

  pollEvery(every);
  var eventsUrl = live.getAttribute("data-events");
  if (window.EventSource && eventsUrl) {
    var stream = new EventSource(eventsUrl);
    stream.addEventListener("tally", refresh);
    // While the stream is up, the timer only moves the chart's minutes along.
    stream.addEventListener("open", function () { pollEvery(Math.max(every, 30000)); });
    stream.addEventListener("error", function () {
      pollEvery(every);
      if (stream.readyState === EventSource.CLOSED) stream.close();
    });
  }
})();
