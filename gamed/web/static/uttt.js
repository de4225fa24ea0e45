// gamed: /play/uttt, a small browser client of the uttt WebSocket protocol (docs/uttt.md).
// Plain JavaScript, no framework; every name from the server is set as text, never HTML.
(function () {
  "use strict";
  var root = document.getElementById("play");
  if (!root) { return; }
  var $ = function (id) { return document.getElementById(id); };
  var SESSION_KEY = "gamed-uttt-session";
  var MARKS = ["", "X", "O"];
  var ws = null;
  var me = null;            // {name, registered}
  var matches = {};         // id -> {id, ranked, state}
  var order = [];           // match ids, oldest first
  var current = null;       // id of the match on the board
  var pending = false;      // a move sent and not answered yet

  function url() {
    if (root.dataset.websocketUrl) { return root.dataset.websocketUrl; }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.hostname + ":" + root.dataset.websocketPort + "/";
  }

  function send(type, data) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({type: type, data: data || {}}));
    }
  }

  function notice(text, isError) {
    var box = $("notice");
    box.textContent = text || "";
    box.hidden = !text;
    box.classList.toggle("error", !!isError);
  }

  function status(text) { $("play-status").textContent = text; }

  function element(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  // -- connection ------------------------------------------------------------------------

  function connect() {
    status("Connecting…");
    ws = new WebSocket(url());
    ws.onopen = function () {
      var saved = sessionStorage.getItem(SESSION_KEY);
      if (saved) {
        status("Resuming your session…");
        send("reconnect", {id: saved});
      } else {
        showLogin();
      }
    };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      var handler = HANDLERS[message.type];
      if (handler) { handler(message.data || {}); }
    };
    ws.onclose = function () {
      ws = null;
      me = null;
      pending = false;
      status("Disconnected from the server.");
      $("lobby-card").hidden = true;
      $("login-card").hidden = true;
      var box = $("notice");
      notice("The connection closed. ");
      var again = element("button", "Connect again", "secondary");
      again.id = "reconnect-button";
      again.type = "button";
      again.onclick = function () { notice(""); connect(); };
      box.appendChild(again);
      drawBoard();
    };
  }

  function showLogin() {
    me = null;
    $("login-card").hidden = false;
    $("lobby-card").hidden = true;
    status("Log in to play.");
  }

  function loggedIn(data) {
    if (!data.success) {
      sessionStorage.removeItem(SESSION_KEY);
      notice(data.msg || "Login failed.", true);
      showLogin();
      return;
    }
    sessionStorage.setItem(SESSION_KEY, data.id);
    $("login-password").value = "";
    me = {name: data.user, registered: !!data.registered};
    matches = {}; order = []; current = null;
    notice("");
    $("login-card").hidden = true;
    $("lobby-card").hidden = false;
    $("me").textContent = me.name + (me.registered ? "" : " (temporary)");
    $("elo").textContent = me.registered ? "" : "unranked";
    $("friend-form").hidden = !me.registered;
    drawMatches();
    drawBoard();
  }

  // -- server messages -------------------------------------------------------------------

  function response(data) {
    if (data.success === false) { notice(data.msg || "Refused.", true); }
  }

  var HANDLERS = {
    login_response: loggedIn,
    reconnect_response: loggedIn,
    elo_update: function (data) {
      if (!me) { return; }
      $("elo").textContent = data.elo === null || data.elo === undefined ? "unranked"
        : "Elo " + Math.round(data.elo) + (data.rank ? " · rank " + data.rank : "");
    },
    friends_update: function (data) {
      var list = $("friends");
      list.textContent = "";
      var names = data.friends || [];
      if (!names.length) { list.appendChild(element("li", "No friend yet.", "muted")); }
      names.forEach(function (name, i) {
        var item = element("li");
        item.dataset.friend = name;
        var label = element("span", name + " · " + Math.round((data.elos || [])[i] || 0));
        var online = element("span", (data.online || [])[i] ? "online" : "offline",
                             "status" + ((data.online || [])[i] ? " online" : ""));
        var invite = element("button", "Invite", "secondary");
        invite.type = "button";
        invite.onclick = function () { send("match_request", {player: name}); };
        item.appendChild(label); item.appendChild(online); item.appendChild(invite);
        list.appendChild(item);
      });
    },
    match_update: function (data) {
      var id = String(data.id);
      if (!data.match_state) {  // the server says: forget it
        delete matches[id];
        order = order.filter(function (other) { return other !== id; });
        if (current === id) { current = null; }
      } else {
        if (!matches[id]) { order.push(id); }
        matches[id] = {id: id, ranked: data.ranked, state: data.match_state};
        if (current === null || (matches[current] && matches[current].state.game_over &&
                                 !data.match_state.game_over)) {
          current = id;
        }
      }
      pending = false;
      drawMatches();
      drawBoard();
    },
    match_request: function (data) {  // someone invited us; its match_update comes too
      notice(data.player + " invited you to a match.");
      if (data.id !== undefined) { current = String(data.id); drawMatches(); drawBoard(); }
    },
    match_request_response: function (data) {
      if (data.success === false) { notice(data.msg || "Refused.", true); }
      else { notice(data.msg || ""); }
    },
    move_response: function (data) { pending = false; response(data); drawBoard(); },
    end_match_response: response,
    friend_request_response: response,
    unfriend_request_response: response,
    match_states_response: response,
    error: function (data) { pending = false; notice(data.msg || "Error.", true); drawBoard(); }
  };

  // -- drawing ---------------------------------------------------------------------------

  function opponentOf(state) {
    return state.player_a === me.name ? state.player_b : state.player_a;
  }

  function describe(match) {
    var s = match.state;
    if (s.game_over) {
      if (s.is_draw || !s.player_won) { return "draw"; }
      return s.player_won === me.name ? "you won" : s.player_won + " won";
    }
    return s.active_player === me.name ? "your move" : s.active_player + " to move";
  }

  function drawMatches() {
    var list = $("matches");
    list.textContent = "";
    if (!me || !order.length) {
      list.appendChild(element("li", "No open match.", "muted"));
      return;
    }
    order.slice().reverse().forEach(function (id) {
      var match = matches[id];
      var item = element("li", null, id === current ? "current" : "");
      item.dataset.match = id;
      item.appendChild(element("span", "vs " + opponentOf(match.state) +
                               (match.ranked ? "" : " (unranked)")));
      item.appendChild(element("span", describe(match), "muted"));
      var show = element("button", id === current ? "Shown" : "Show", "secondary");
      show.type = "button";
      show.disabled = id === current;
      show.onclick = function () { current = id; drawMatches(); drawBoard(); };
      item.appendChild(show);
      list.appendChild(item);
    });
  }

  function allowedSubs(state) {
    var open = [];
    for (var sub = 0; sub < 9; sub++) {
      if (state.global_field[Math.floor(sub / 3)][sub % 3] === 0) { open.push(sub); }
    }
    var last = state.last_move;
    if (last) {
      var target = Number(last.y) * 3 + Number(last.x);
      if (state.global_field[Number(last.y)][Number(last.x)] === 0) { return [target]; }
    }
    return open;
  }

  function drawBoard() {
    var board = $("board");
    board.textContent = "";
    var match = me && current !== null ? matches[current] : null;
    $("match-actions").hidden = !match || match.state.game_over;
    if (!match) {
      board.classList.add("empty");
      if (me) { status(order.length ? "Choose a match." : "Start a match: a random opponent or a friend."); }
      for (var i = 0; i < 9; i++) {
        var blank = element("div", null, "sub");
        for (var j = 0; j < 9; j++) { blank.appendChild(element("span", null, "cell")); }
        board.appendChild(blank);
      }
      return;
    }
    board.classList.remove("empty");
    var s = match.state;
    var mine = !s.game_over && s.active_player === me.name && !pending;
    var allowed = s.game_over ? [] : allowedSubs(s);
    var myMark = s.player_a === me.name ? 1 : 2;
    var last = s.last_move;
    for (var sub = 0; sub < 9; sub++) {
      var sx = sub % 3, sy = Math.floor(sub / 3);
      var won = s.global_field[sy][sx];
      var cls = "sub" + (won === 1 ? " won-x" : won === 2 ? " won-o" : won === 3 ? " drawn" : "");
      if (mine && allowed.indexOf(sub) >= 0) { cls += " allowed"; }
      var subDiv = element("div", null, cls);
      for (var y = 0; y < 3; y++) {
        for (var x = 0; x < 3; x++) {
          var mark = s.complete_field[sy * 3 + y][sx * 3 + x];
          var cell = element("button", MARKS[mark], "cell" + (mark ? (mark === 1 ? " x" : " o") : ""));
          cell.type = "button";
          cell.dataset.sub = String(sub);
          cell.dataset.x = String(x);
          cell.dataset.y = String(y);
          if (last && Number(last.sub_x) === sx && Number(last.sub_y) === sy &&
              Number(last.x) === x && Number(last.y) === y) { cell.classList.add("last"); }
          cell.disabled = !(mine && mark === 0 && allowed.indexOf(sub) >= 0);
          cell.setAttribute("aria-label", "sub-board " + (sub + 1) + ", row " + (y + 1) +
                            ", column " + (x + 1) + (mark ? ": " + MARKS[mark] : ""));
          cell.onclick = play(match.id, sx, sy, x, y);
          subDiv.appendChild(cell);
        }
      }
      board.appendChild(subDiv);
    }
    var who = "You are " + MARKS[myMark] + " against " + opponentOf(s) + ". ";
    if (s.game_over) {
      status(who + (s.is_draw ? "It is a draw." : s.player_won === me.name ? "You won!" :
                    (s.player_won || "nobody") + " won."));
    } else {
      status(who + (s.active_player === me.name ? "Your move." : "Waiting for " + s.active_player + "."));
    }
  }

  function play(id, sx, sy, x, y) {
    return function () {
      if (pending) { return; }
      pending = true;
      notice("");
      send("move", {id: id, sub_x: String(sx), sub_y: String(sy), x: String(x), y: String(y)});
      drawBoard();
    };
  }

  // -- forms -----------------------------------------------------------------------------

  $("login-form").onsubmit = function (event) {
    event.preventDefault();
    var name = $("login-name").value.trim().toLowerCase();
    var pw = $("login-password").value;
    if (!name) { notice("Give a name (or play as a guest).", true); return; }
    send("login", {name: name, pw: pw});
  };
  $("guest-button").onclick = function () {
    var name = $("login-name").value.trim().toLowerCase();
    send("temp_session", name ? {name: name} : {});
  };
  $("random-form").onsubmit = function (event) {
    event.preventDefault();
    send("match_request", {player: null});
  };
  $("invite-form").onsubmit = function (event) {
    event.preventDefault();
    var name = $("invite-name").value.trim();
    if (name) { send("match_request", {player: name}); $("invite-name").value = ""; }
  };
  $("friend-form").onsubmit = function (event) {
    event.preventDefault();
    var name = $("friend-name").value.trim();
    if (name) { send("friend_request", {user: name}); $("friend-name").value = ""; }
  };
  $("end-match").onclick = function () {
    if (current !== null) { send("end_match", {id: current}); }
  };
  $("logout-button").onclick = function () {
    sessionStorage.removeItem(SESSION_KEY);
    if (ws) { ws.onclose = null; ws.close(); }
    matches = {}; order = []; current = null; me = null;
    $("login-password").value = "";
    notice("");
    drawMatches(); drawBoard();
    connect();
  };

  drawBoard();
  connect();
}());
