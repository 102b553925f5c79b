/* The public results page, live: re-renders the standings from each tally event. */
(function () {
  "use strict";

  var section = document.querySelector(".live-results");
  if (!section || !window.EventSource) return;

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function statusLine(doc) {
    switch (doc.status) {
      case "draft": return "Voting has not opened yet.";
      case "open": return "Voting is open: " + plural(doc.turnout, "ballot") + " so far.";
      case "closed": return "Voting has closed with " + plural(doc.turnout, "ballot") + ". The results will be revealed soon.";
      case "revealing": return "Revealing the results: " + doc.reveal_step + " of " + doc.places + " places so far, from " + plural(doc.turnout, "ballot") + ".";
      default: return "Final results from " + plural(doc.turnout, "ballot") + ".";
    }
  }

  function note(doc, shown) {
    if (doc.status === "revealing") {
      var left = doc.places - (doc.reveal_step || 0);
      if (left === 1) return "First place is still to come.";
      if (left > 1) return "Places 1 to " + left + " are still to come.";
      return "";
    }
    if (!shown.length && doc.status !== "draft") return "The results will be shown when the organizers reveal them.";
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
    if (place.tied_with.length > 3) {
      text = section.getAttribute("data-tied-many").replace("{n}", place.tied_with.length);
    } else {
      var titles = {};
      shown.forEach(function (p) { titles[p.project] = p.title; });
      var names = place.tied_with.map(function (slug) { return titles[slug] || slug; });
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
      seed.appendChild(document.createTextNode("Tie-break seed: "));
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
        var bar = span("bar");
        bar.appendChild(span(""));
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
      li.querySelector(".votes").textContent = place.votes;
      li.querySelector(".bar > span").style.width = (max ? (100 * place.votes) / max : 0) + "%";
      return li;
    });
    list.textContent = "";
    items.forEach(function (li) { list.appendChild(li); });
    renderTieBreak(doc, shown.some(function (p) { return p.tied; }));
  }

  window.VotingLive.share(section.getAttribute("data-stream"), { tally: render });
})();
