// gamed: live counts of online players and running matches, polled from /api/live.
(function () {
  "use strict";
  var badges = document.querySelectorAll(".live[data-game]");
  if (!badges.length) { return; }
  var every = 2000;
  function show(games) {
    badges.forEach(function (badge) {
      var counts = games[badge.dataset.game];
      if (!counts) { return; }
      badge.classList.remove("stale");
      badge.querySelector('[data-live="online"]').textContent = counts.online;
      badge.querySelector('[data-live="matches"]').textContent = counts.matches;
    });
  }
  function poll() {
    if (document.hidden) {  // a tab in the background asks nothing; shown again, it asks
      document.addEventListener("visibilitychange", function shown() {
        if (document.hidden) { return; }
        document.removeEventListener("visibilitychange", shown);
        poll();
      });
      return;
    }
    fetch("/api/live", {cache: "no-store"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (body) { show(body.games); })
      .catch(function () { badges.forEach(function (b) { b.classList.add("stale"); }); })
      .then(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
}());
