/* The stream overlay: renders the public results document and follows the event stream. */
(function () {
  "use strict";

  var body = document.body;
  var stage = document.querySelector(".stage");
  var top = parseInt(body.getAttribute("data-top"), 10) || 10;
  var layout = body.getAttribute("data-layout") || "bars";
  var heartbeatMs = parseInt(body.getAttribute("data-heartbeat"), 10) || 15000;
  var offset = parseInt(body.getAttribute("data-now"), 10) - Date.now(); // server minus local
  var numbers = new Intl.NumberFormat("en");
  var doc = JSON.parse(document.getElementById("initial-doc").textContent);
  var slots = {}; // rank -> element, for the reveal board
  var slotCount = 0;
  var spotlightRank = null;
  // The prize the winner card names: the poll's award, else its title.
  var award = stage.getAttribute("data-award") || "Community Favorite";

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // As voting.domain.fingerprint.short: the first 12 hex digits in groups of four.
  function shortFingerprint(value) {
    return value ? value.slice(0, 12).match(/.{1,4}/g).join("-") : "";
  }

  function votes(n) { return numbers.format(n) + (n === 1 ? " vote" : " votes"); }

  function ordinal(n) {
    var s = ["th", "st", "nd", "rd"];
    var v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  /* -- the clock ---------------------------------------------------------------------- */

  function clockTarget() {
    if (doc.status === "open" && doc.closes_at) return { at: Date.parse(doc.closes_at), label: "Voting closes in" };
    if (doc.status === "draft" && doc.opens_at) return { at: Date.parse(doc.opens_at), label: "Voting opens in" };
    return null;
  }

  function tick() {
    var target = clockTarget();
    var clock = stage.querySelector(".stat-clock");
    if (!target) {
      clock.hidden = true;
      return;
    }
    clock.hidden = false;
    $("clock-label").textContent = target.label;
    var left = Math.max(0, Math.round((target.at - (Date.now() + offset)) / 1000));
    var h = Math.floor(left / 3600);
    var m = Math.floor((left % 3600) / 60);
    var s = left % 60;
    var mm = (m < 10 ? "0" : "") + m;
    var ss = (s < 10 ? "0" : "") + s;
    var text = h > 0 ? h + ":" + mm + ":" + ss : mm + ":" + ss;
    if ($("clock").textContent !== text) {
      $("clock").textContent = text;
      fitWidth($("clock"), 100, 40);
    }
    if (doc.status === "draft") $("message-sub").textContent = "in " + text;
  }

  /* -- rows ------------------------------------------------------------------------------ */

  /* Gold is for a leader someone voted for: at 0 votes nobody leads. */
  function leads(place) { return place.rank === 1 && place.votes > 0; }

  function fillRow(row, place, max) {
    row.classList.add("revealed");
    row.classList.toggle("leader", leads(place));
    // Tied with another place on the board (the document names shown places only).
    row.classList.toggle("tied", !!place.tied);
    row.setAttribute("data-project", place.project);
    row.querySelector(".name").textContent = place.title;
    row.querySelector(".tie-mark").textContent = place.tied ? "tie" : "";
    row.querySelector(".team").textContent = place.team ? "by " + place.team : "";
    row.querySelector(".count").textContent = numbers.format(place.votes);
    var width = max > 0 ? Math.max(2, (100 * place.votes) / max) : 2;
    var fill = row.querySelector(".fill");
    // Set after a frame so a newly revealed bar grows from nothing.
    requestAnimationFrame(function () { fill.style.width = width + "%"; });
  }

  function makeRow(rank) {
    var row = el("li", "row");
    row.setAttribute("data-rank", rank);
    row.appendChild(el("span", "rank", String(rank)));
    var text = el("div", "text");
    var line = el("div", "line");
    line.appendChild(el("span", "name", "\u2022 \u2022 \u2022"));
    line.appendChild(el("span", "team", ""));
    line.appendChild(el("span", "tie-mark", ""));
    text.appendChild(line);
    var track = el("div", "track");
    track.appendChild(el("div", "fill"));
    text.appendChild(track);
    row.appendChild(text);
    row.appendChild(el("span", "count", ""));
    return row;
  }

  function maxVotes(places) {
    return places.reduce(function (m, p) { return Math.max(m, p.votes); }, 0);
  }

  /* Open poll in live mode: the standings so far, best first. */
  function renderLive(places) {
    var list = $("rows");
    list.textContent = "";
    slots = {};
    slotCount = 0;
    var max = maxVotes(places);
    places.slice(0, top).forEach(function (place) {
      var row = makeRow(place.rank);
      list.appendChild(row);
      fillRow(row, place, max);
    });
    setDensity(Math.min(top, places.length));
  }

  /* Compact rows for more than ten places, or when ten do not fit under a two-line title. */
  function setDensity(n) {
    var board = $("board");
    stage.classList.remove("dense");
    var crowded = n > 10 || (!board.hidden && board.scrollHeight > board.clientHeight + 1);
    stage.classList.toggle("dense", crowded);
  }

  /* The staged reveal as bars: a slot per place 1..N, filled from the bottom up. */
  function renderRevealBars(places) {
    var list = $("rows");
    var count = Math.min(top, doc.places);
    if (slotCount !== count || list.children.length !== count) {
      list.textContent = "";
      slots = {};
      for (var rank = 1; rank <= count; rank++) {
        slots[rank] = makeRow(rank);
        list.appendChild(slots[rank]);
      }
      slotCount = count;
    }
    setDensity(count);
    var max = maxVotes(places);
    places.forEach(function (place) {
      if (slots[place.rank]) fillRow(slots[place.rank], place, max);
    });
    renderTicker(places.filter(function (p) { return p.rank > count; }));
  }

  /* The staged reveal as a podium: places 4..N listed, the top three on pillars. */
  function renderRevealPodium(places) {
    var podium = $("podium");
    if (!podium.children.length) {
      [2, 1, 3].forEach(function (rank) {
        var column = el("div", "pillar-column");
        column.setAttribute("data-rank", rank);
        var card = el("div", "card");
        if (rank === 1) card.appendChild(el("span", "card-award", award));
        card.appendChild(el("span", "card-name", ""));
        card.appendChild(el("span", "card-team", ""));
        card.appendChild(el("span", "card-votes", ""));
        column.appendChild(card);
        column.appendChild(el("div", "pillar", String(rank)));
        podium.appendChild(column);
      });
    }
    var rest = places.filter(function (p) { return p.rank > 3; });
    var list = $("rows");
    var count = Math.max(0, Math.min(top, doc.places) - 3);
    if (list.children.length !== count) {
      list.textContent = "";
      slots = {};
      for (var rank = 4; rank < 4 + count; rank++) {
        slots[rank] = makeRow(rank);
        list.appendChild(slots[rank]);
      }
    }
    var max = maxVotes(places);
    rest.forEach(function (place) {
      if (slots[place.rank]) fillRow(slots[place.rank], place, max);
    });
    places.forEach(function (place) {
      if (place.rank > 3) return;
      var column = podium.querySelector('[data-rank="' + place.rank + '"]');
      if (!column) return;
      column.classList.add("revealed");
      column.classList.toggle("leader", leads(place));
      column.classList.toggle("tied", !!place.tied);
      column.setAttribute("data-project", place.project);
      column.querySelector(".card-name").textContent = place.title;
      column.querySelector(".card-team").textContent = place.team ? "by " + place.team : "";
      column.querySelector(".card-votes").textContent = votes(place.votes);
    });
    renderTicker(places.filter(function (p) { return p.rank >= 4 + count; }));
  }

  function renderTicker(beyond) {
    var ticker = $("ticker");
    if (!beyond.length) {
      ticker.textContent = "";
      ticker.hidden = true;
      return;
    }
    ticker.hidden = false;
    ticker.textContent = beyond
      .slice()
      .sort(function (a, b) { return a.rank - b.rank; })
      .map(function (p) {
        return ordinal(p.rank) + " " + p.title + " (" + numbers.format(p.votes) + (p.tied ? ", tie" : "") + ")";
      })
      .join("   \u00b7   ");
  }

  /* The card on the right: the place just revealed, and at the end the winner. */
  function renderSpotlight(places) {
    var card = $("winner");
    if (!places.length) {
      card.hidden = true;
      return;
    }
    var best = places.reduce(function (a, b) { return a.rank < b.rank ? a : b; });
    var winner = doc.status === "revealed" && best.rank === 1;
    card.hidden = false;
    card.setAttribute("data-kind", winner ? "winner" : "spotlight");
    card.classList.toggle("leader", leads(best));
    card.querySelector(".winner-label").textContent = winner ? award : ordinal(best.rank) + " place";
    $("winner-title").textContent = best.title;
    fit($("winner-title"), winner ? 88 : 68, 36);
    $("winner-team").textContent = best.team ? "by " + best.team : "";
    $("winner-votes").textContent = votes(best.votes);
    // Places tied with a shown place: all of them are on the board, so is their order's reason.
    $("winner-tie").textContent = !best.tied
      ? ""
      : winner
        ? "tie decided by the declared draw"
        : "tied \u00b7 order decided by the declared draw";
    $("winner-tie").hidden = !best.tied;
    if (spotlightRank !== best.rank) {
      // Replay the entrance for each newly revealed place.
      card.classList.remove("enter");
      void card.offsetWidth;
      card.classList.add("enter");
      spotlightRank = best.rank;
    }
  }

  /* Shrink a one-line figure until it fits its card ("1:58:06" where "24:58" fits at 100px). */
  function fitWidth(node, largest, smallest) {
    var size = largest;
    node.style.fontSize = size + "px";
    while (size > smallest && node.scrollWidth > node.clientWidth) {
      size -= 4;
      node.style.fontSize = size + "px";
    }
  }

  /* Shrink a title until it takes at most `lines` lines. */
  function fitLines(node, largest, smallest, lines) {
    var size = largest;
    node.style.fontSize = size + "px";
    while (size > smallest && node.getBoundingClientRect().height > size * 1.08 * lines + 2) {
      size -= 2;
      node.style.fontSize = size + "px";
    }
  }

  /* Shrink a headline until it fits its box, rather than break a project's name. */
  function fit(node, largest, smallest) {
    var size = largest;
    node.style.fontSize = size + "px";
    while (size > smallest && (node.scrollWidth > node.clientWidth || node.scrollHeight > size * 2.3)) {
      size -= 4;
      node.style.fontSize = size + "px";
    }
  }

  var BADGES = {
    draft: "Coming up",
    open: "Vote now",
    closed: "Voting closed",
    revealing: "The reveal",
    revealed: "Results"
  };

  function message(headline, sub) {
    $("message-headline").textContent = headline;
    $("message-sub").textContent = sub || "";
  }

  /* -- the whole picture ---------------------------------------------------------------- */

  function render() {
    var status = doc.status;
    var places = window.VotingLive.shownPlaces(doc);
    stage.setAttribute("data-status", status);
    stage.setAttribute("data-mode", doc.results_mode || "");
    stage.querySelector(".badge").textContent = BADGES[status] || "Community Favorite";
    $("turnout").textContent = numbers.format(doc.turnout);
    fitWidth($("turnout"), 100, 40);
    var liveBoard = status === "open" && places.length > 0;
    var reveal = status === "revealing" || status === "revealed";
    stage.classList.toggle("has-board", liveBoard || reveal);
    stage.classList.toggle("has-message", status === "draft" || status === "closed");
    $("board").hidden = !(liveBoard || reveal);
    $("winner").hidden = !reveal;
    $("seed").textContent = doc.tie_seed ? "Tie-break seed: " + doc.tie_seed : "";
    // The fingerprint changes if the poll's definition does (a project withdrawn, tokens added).
    $("fingerprint").hidden = !doc.fingerprint;
    $("fingerprint-code").textContent = shortFingerprint(doc.fingerprint);

    if (status === "draft") {
      message("Voting opens soon", "");
    } else if (status === "closed") {
      message("Voting has closed", votes(doc.turnout) + " \u00b7 the results are coming up");
    }
    if (liveBoard) {
      $("board-title").textContent = "Live standings";
      $("podium").textContent = "";
      renderLive(places);
      renderTicker([]);
    } else if (reveal) {
      var step = status === "revealed" ? doc.places : doc.reveal_step || 0;
      $("board-title").textContent =
        status === "revealed" ? "Final results" : "Revealing \u00b7 " + step + " of " + doc.places;
      if (layout === "podium") renderRevealPodium(places);
      else renderRevealBars(places);
      renderSpotlight(places);
    }
    tick();
  }

  fitLines($("title"), 54, 40, 2);
  render();
  setInterval(tick, 250);

  window.VotingLive.connect(body.getAttribute("data-stream"), {
    quietMs: heartbeatMs * 2.5,
    tally: function (next) {
      doc = next;
      render();
    },
    heartbeat: function (data) {
      if (data && data.now) offset = data.now - Date.now();
    },
    revoked: function () {
      stage.setAttribute("data-status", "revoked");
      message("This overlay link was replaced", "Paste the new overlay URL into the browser source.");
    }
  });
})();
