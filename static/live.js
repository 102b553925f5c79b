/* Live results over Server-Sent Events, reconnecting by itself.
 *
 * EventSource already reconnects after a dropped connection, sending Last-Event-ID. This
 * also starts over when the browser gives up (an HTTP error, say a proxy's 502 during a
 * deploy) and when nothing, not even a heartbeat, has arrived for a while (a half-open
 * connection after a network change), with a growing, jittered delay.
 */
(function () {
  "use strict";

  function connect(url, handlers) {
    var source = null;
    var lastId = null;
    var retryTimer = null;
    var watchdog = null;
    var delay = 1000;
    var stopped = false;
    var quietMs = handlers.quietMs || 40000;

    function state(name) {
      document.body.setAttribute("data-connection", name);
      if (handlers.state) handlers.state(name);
    }

    function arm() {
      clearTimeout(watchdog);
      watchdog = setTimeout(restart, quietMs);
    }

    function open() {
      if (stopped) return;
      var target = url;
      if (lastId) {
        // A new EventSource sends no Last-Event-ID header of its own; the server reads this.
        target += (url.indexOf("?") < 0 ? "?" : "&") + "lastEventId=" + encodeURIComponent(lastId);
      }
      source = new EventSource(target);
      arm();
      source.onopen = function () {
        delay = 1000;
        state("live");
        arm();
      };
      source.addEventListener("tally", function (event) {
        arm();
        lastId = event.lastEventId || lastId;
        var doc;
        try {
          doc = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        state("live");
        handlers.tally(doc);
      });
      source.addEventListener("heartbeat", function (event) {
        arm();
        if (!handlers.heartbeat) return;
        try {
          handlers.heartbeat(JSON.parse(event.data));
        } catch (err) {
          /* a heartbeat we cannot read is still a heartbeat */
        }
      });
      source.addEventListener("revoked", function () {
        stop();
        if (handlers.revoked) handlers.revoked();
      });
      source.onerror = function () {
        if (stopped) return;
        state("reconnecting");
        if (source.readyState === EventSource.CLOSED) schedule();
      };
    }

    function schedule() {
      clearTimeout(retryTimer);
      clearTimeout(watchdog);
      if (source) source.close();
      retryTimer = setTimeout(open, delay + Math.random() * 1000);
      delay = Math.min(delay * 2, 30000);
    }

    function restart() {
      if (stopped) return;
      state("reconnecting");
      schedule();
    }

    function stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearTimeout(watchdog);
      if (source) source.close();
      state("stopped");
    }

    open();
    return { stop: stop };
  }

  /* One stream per browser, however many tabs show the page.
   *
   * Browsers allow six HTTP/1.1 connections per host: seven tabs of the results page
   * would each hold an event stream and freeze every other page of the site, the ballot
   * included. So the tabs elect one (a Web Lock, held until that tab closes) to hold the
   * stream and pass each event to the others over a BroadcastChannel; when it closes,
   * the next tab takes the lock and opens the stream, from the last event id seen.
   * Without those APIs each tab connects on its own, as before.
   */
  function share(url, handlers) {
    if (!window.BroadcastChannel || !navigator.locks || !navigator.locks.request) {
      return connect(url, handlers);
    }
    var name = "voting-live " + url;
    var channel = new BroadcastChannel(name);
    var lastId = null;
    var leading = false;
    channel.onmessage = function (message) {
      var data = message.data || {};
      if (leading) return;
      if (data.id) lastId = data.id;
      if (data.state) document.body.setAttribute("data-connection", data.state);
      if (data.doc && handlers.tally) handlers.tally(data.doc);
      if (data.revoked && handlers.revoked) handlers.revoked();
    };
    document.body.setAttribute("data-connection", "shared");
    navigator.locks.request(name, function () {
      leading = true;
      var target = url;
      if (lastId) target += (url.indexOf("?") < 0 ? "?" : "&") + "lastEventId=" + encodeURIComponent(lastId);
      connect(target, {
        quietMs: handlers.quietMs,
        tally: function (doc) {
          channel.postMessage({ doc: doc, id: doc.version, state: "live" });
          handlers.tally(doc);
        },
        state: function (state) {
          channel.postMessage({ state: state });
          if (handlers.state) handlers.state(state);
        },
        revoked: function () {
          channel.postMessage({ revoked: true });
          if (handlers.revoked) handlers.revoked();
        }
      });
      return new Promise(function () { /* held while this tab lives */ });
    });
    return { stop: function () { channel.close(); } };
  }

  /* The places to show now: during the staged reveal only those revealed so far. */
  function shownPlaces(doc) {
    var rows = doc.results || [];
    if (doc.status === "revealing") {
      var firstShown = doc.places - (doc.reveal_step || 0);
      rows = rows.filter(function (row) { return row.rank > firstShown; });
    }
    return rows;
  }

  window.VotingLive = { connect: connect, share: share, shownPlaces: shownPlaces };
})();
