/* The public results page, live: re-renders the standings from each tally event. */
(function () {
  "use strict";

  var section = document.querySelector(".live-results");
  if (!section || !window.EventSource) return;

  // Every sentence comes from the page (data-*), in its language; plural forms by CLDR rule.
  var lang = document.documentElement.lang || "en";
  var rules = new Intl.PluralRules(lang);
  var numbers = new Intl.NumberFormat(lang);

  function says(name, n) {
    var text = n === undefined
      ? section.getAttribute("data-" + name)
      : section.getAttribute("data-" + name + "-" + rules.select(n)) ||
        section.getAttribute("data-" + name + "-other");
    return (text || "").replace("{n}", n === undefined ? "" : numbers.format(n));
  }

  function statusLine(doc) {
    switch (doc.status) {
      case "draft": return says("draft");
      case "open": return says("open", doc.turnout);
      case "closed": return says("closed", doc.turnout);
      case "revealing":
        return says("revealing", doc.turnout)
          .replace("{step}", doc.reveal_step)
          .replace("{places}", doc.places);
      default: return says("revealed", doc.turnout);
    }
  }

  function note(doc, shown) {
    if (doc.status === "revealing") {
      var left = doc.places - (doc.reveal_step || 0);
      if (left === 1) return says("first-left");
      if (left > 1) return section.getAttribute("data-places-left").replace("{n}", left);
      return "";
    }
    if (!shown.length && doc.status !== "draft") return says("hidden");
    return "";
  }

  function span(className, text) {
    var node = document.createElement("span");
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* "Tied with X; order decided by the declared draw." and the link to how it is computed. */
  function tieNote(place, shown) {
    var node = span("place-tie");
    var text;
    // Tied with: the other shown places with as many votes (the document only flags a tie).
    var partners = shown.filter(function (p) {
      return p.votes === place.votes && p.project !== place.project;
    });
    if (partners.length > 3) {
      text = section.getAttribute("data-tied-many").replace("{n}", partners.length);
    } else {
      var names = partners.map(function (p) { return p.title; });
      text = section.getAttribute("data-tied-names").replace("{names}", names.join(", "));
    }
    node.appendChild(document.createTextNode(text + " "));
    var link = document.createElement("a");
    link.href = "#tie-break";
    link.textContent = section.getAttribute("data-how");
    node.appendChild(link);
    return node;
  }

  function renderTieBreak(doc, anyTied) {
    var box = document.getElementById("tie-break");
    if (!box) return;
    box.hidden = !anyTied;
    document.getElementById("tie-seed-hash").textContent = doc.tie_seed_hash || "";
    document.getElementById("tie-seed-later").hidden = !!doc.tie_seed;
    document.getElementById("tie-seed-now").hidden = !doc.tie_seed;
    document.getElementById("tie-seed").textContent = doc.tie_seed || "";
  }

  function render(doc) {
    var shown = window.VotingLive.shownPlaces(doc);
    section.setAttribute("data-status", doc.status);
    document.getElementById("live-status").textContent = statusLine(doc);
    document.getElementById("live-note").textContent = note(doc, shown);
    var seed = document.getElementById("live-seed");
    seed.textContent = "";
    if (doc.tie_seed) {
      seed.appendChild(document.createTextNode(says("seed") + " "));
      var code = document.createElement("code");
      code.textContent = doc.tie_seed;
      seed.appendChild(code);
    }
    var print = document.getElementById("live-fingerprint");
    if (print) {
      // Shown once the poll opens; it changes if the definition does (a project withdrawn).
      print.hidden = !doc.fingerprint;
      var full = doc.fingerprint || "";
      document.getElementById("fingerprint-short").textContent = full
        ? full.slice(0, 12).match(/.{1,4}/g).join("-")
        : "";
      document.getElementById("fingerprint-full").textContent = full;
    }
    var list = document.getElementById("standings");
    var existing = {};
    Array.prototype.forEach.call(list.children, function (li) { existing[li.getAttribute("data-project")] = li; });
    var max = shown.reduce(function (m, p) { return Math.max(m, p.votes); }, 0);
    var items = shown.slice().sort(function (a, b) { return a.rank - b.rank; }).map(function (place) {
      var li = existing[place.project];
      if (!li) {
        li = document.createElement("li");
        li.setAttribute("data-project", place.project);
        li.appendChild(span("place-rank"));
        var name = span("place-name");
        name.appendChild(document.createElement("strong"));
        name.appendChild(document.createTextNode(" "));
        name.appendChild(span("place-team"));
        li.appendChild(name);
        li.appendChild(span("votes"));
        var bar = document.createElement("meter");
        bar.className = "place-bar";
        bar.min = 0;
        bar.setAttribute("aria-hidden", "true");
        li.appendChild(bar);
      }
      // Gold (the winner's frame) only for a winner someone voted for.
      var winner = doc.status === "revealed" && place.rank === 1 && place.votes > 0;
      li.className = "place" + (winner ? " winner" : "") + (place.tied ? " tied" : "");
      var oldNote = li.querySelector(".place-tie");
      if (oldNote) li.removeChild(oldNote);
      if (place.tied) li.appendChild(tieNote(place, shown));
      li.value = place.rank;
      li.querySelector(".place-rank").textContent = place.rank;
      li.querySelector("strong").textContent = place.title;
      li.querySelector(".place-team").textContent = place.team;
      li.querySelector(".votes").textContent = numbers.format(place.votes);
      var meter = li.querySelector(".place-bar");
      meter.max = max || 1;
      meter.value = place.votes;
      return li;
    });
    list.textContent = "";
    items.forEach(function (li) { list.appendChild(li); });
    renderTieBreak(doc, shown.some(function (p) { return p.tied; }));
  }

  window.VotingLive.share(section.getAttribute("data-stream"), { tally: render });
})();
