"""novaglide across the nodes of a cluster: one rating queue for all of them, each match
run at 60 Hz on the node that paired it, and a player connected to another node playing
through the bus (its inputs to the running node, the states and the end back).

On the running node a remote player's link is a `RemoteLink`; on the player's node the
account is in `remote_match` (account -> running node). Only the running node records
the result (with the match's result key, once). Players of the JSON-lines wire play
across nodes; a classic-wire client is paired only with players of its own node's matches
(its lockstep states are built from the running match; see docs/cluster.md).
"""

from __future__ import annotations

from typing import Optional

from twisted.internet import defer
from twisted.logger import Logger

from gamed.cluster.interface import ClusterUnavailable
from gamed.novaglide.matchmaking import Queue
from gamed.novaglide.messages import parse_input, state_packet

log = Logger(namespace="gamed.novaglide")

GAME = "novaglide"
#: an input equal to the last one forwarded is forwarded again only after this many
#: seconds (inputs are held states on the running node: a repeat changes nothing there,
#: the refresh only covers a lost message)
INPUT_REFRESH = 0.5


class RemoteLink:
    """A match's player connected to another node (the match runs here)."""

    def __init__(self, nova: "NovaglideCluster", node: str, account):
        self.nova = nova
        self.node = node
        self.account = account

    def _publish(self, topic: str, message: dict) -> None:
        self.nova.bus.publish(topic, dict(message, a=self.account.id), [self.node])

    def send_state(self, match, side: int, stamp: str) -> None:
        self._publish("novaglide.state", {"s": side, "t": stamp, "x": match.state_tail()})

    def match_ended(self, ended, side: int) -> None:
        stats = ended.stats(lambda s: round(ended.after[s], 2)) if ended.saved else None
        self._publish("novaglide.end", {"s": side, "saved": ended.saved, "stats": stats,
                                        "w": ended.winner_name})

    def send(self, flag: str, data: list, **extra) -> None:
        self._publish("novaglide.send", {"f": flag, "d": data, "e": extra})


class NovaglideCluster:
    def __init__(self, game, cluster):
        self.game = game
        self.node = cluster.node
        self.cluster = cluster
        self.bus = cluster.bus
        self.queue = cluster.queue
        self.remote_match: dict = {}  # account id -> node running its match
        self.forwarded: dict = {}  # account id -> (last input forwarded, when)
        #: with workers: hands a player to its match's worker (gamed/novaglide/handoff.py)
        self.handoff = None
        topics = {"novaglide.state": self._state, "novaglide.end": self._end,
                  "novaglide.send": self._send, "novaglide.matched": self._matched,
                  "novaglide.input": self._input, "novaglide.gone": self._gone,
                  "novaglide.back": self._back}
        for topic, handler in topics.items():
            self.bus.subscribe(topic, handler)
        self.queue.on_taken(GAME, lambda key: game.queue.remove(int(key)))
        cluster.on_node_gone(self.node_gone)

    def node_gone(self, node: str) -> None:
        """`node` is gone. This node's players whose match ran there are told (`error
        match_lost`) and may queue again; in the matches run here, its players have
        dropped (the rejoin grace runs: they may log in again on any node, else they
        forfeit, and the result is recorded here once)."""
        for account_id, running in list(self.remote_match.items()):
            if running != node:
                continue
            del self.remote_match[account_id]
            self.forwarded.pop(account_id, None)
            connection = self.game.online.get(account_id)
            if connection is not None:
                connection.fail("match_lost", "the server running your match went away; "
                                              "you may queue again")
        for match in list(self.game.matches):
            for side, link in list(match.links.items()):
                if isinstance(link, RemoteLink) and link.node == node:
                    self.game.seat_dropped(match, side)

    # -- the queue ------------------------------------------------------------------------

    def join(self, account_id: int, rating: float, since: float, portable: bool) -> None:
        """Wait in the cluster's queue; a player whose states cannot travel (`portable`
        False: the classic wire) only meets players of its own node."""
        self.queue.join(GAME, str(account_id), {"rating": rating, "since": since,
                                                "portable": portable}).addErrback(
            self._failed, "joining the queue")

    def leave(self, account_id: int) -> None:
        self.queue.leave(GAME, str(account_id)).addErrback(self._failed, "leaving the queue")

    def _failed(self, reason, what: str) -> None:
        if not reason.check(ClusterUnavailable):
            log.warn("novaglide: {what} failed: {error}", what=what,
                     error=reason.getErrorMessage())

    def pair(self) -> defer.Deferred:
        return self._pair().addErrback(self._failed, "pairing")

    @defer.inlineCallbacks
    def _pair(self):
        game = self.game
        entries = yield self.queue.entries(GAME)
        if len(entries) < 2 or game.draining:
            return
        settings = game.settings
        window = Queue(settings.match_window, settings.match_window_widen,
                       settings.match_window_max)
        for key, entry in entries.items():
            window.add(int(key), entry["rating"], entry["since"])
        for first, second in window.pairs(game.now()):
            keys = [str(first.account_id), str(second.account_id)]
            if not all(entries[key].get("portable", True) for key in keys) and not all(
                    entries[key].get("node") == self.node for key in keys):
                continue  # a classic-wire player plays on its own node only
            if not all(self.cluster.is_up(entries[key].get("node")) for key in keys):
                continue  # a node gone (its entries are being purged) or not seen yet
            taken = yield self.queue.take(GAME, keys)
            if taken is None:
                continue  # another node paired one of them first
            links = []
            for waiting, key in ((first, keys[0]), (second, keys[1])):
                links.append((yield self._link(waiting.account_id, taken[key]["node"])))
            if None in links or game.draining:
                continue  # an account vanished meanwhile: both may queue again
            match = game.start_match(links[0], links[1], first.rating, second.rating)
            for side, link in match.links.items():
                if isinstance(link, RemoteLink) and not self.cluster.is_up(link.node):
                    game.seat_dropped(match, side)  # its node went while this was paired
            for link in links:
                game.queue.remove(link.account.id)
                if isinstance(link, RemoteLink):
                    self.bus.publish("novaglide.matched", {"a": link.account.id}, [link.node])
            log.info("novaglide: match {match_id} runs here for players of {nodes}",
                     match_id=match.id, nodes=sorted({getattr(l, "node", self.node)
                                                      for l in links}))

    @defer.inlineCallbacks
    def _link(self, account_id: int, node: str):
        if node == self.node:
            return self.game.online.get(account_id)
        account = yield self.game.core.accounts.get_account(account_id)
        return None if account is None else RemoteLink(self, node, account)

    # -- the player's node ----------------------------------------------------------------

    def in_match(self, account_id: int) -> bool:
        return account_id in self.remote_match

    def input(self, account_id: int, data) -> None:
        """To the running node; a client repeats its input every frame, but only a change
        (or a refresh after INPUT_REFRESH) is forwarded: the match holds the last one."""
        now = self.game.now()
        last = self.forwarded.get(account_id)
        if last is not None and last[0] == data and now - last[1] < INPUT_REFRESH:
            return
        self.forwarded[account_id] = (data, now)
        self.bus.publish("novaglide.input", {"a": account_id, "d": data},
                         [self.remote_match[account_id]])

    def disconnected(self, account_id: int) -> None:
        self.forwarded.pop(account_id, None)
        node = self.remote_match.pop(account_id, None)
        if node is not None:
            self.bus.publish("novaglide.gone", {"a": account_id}, [node])

    def logged_in(self, account_id: int) -> None:
        """A player whose match may run on another node: that node links it here."""
        self.bus.publish("novaglide.back", {"a": account_id})

    def _connection(self, message: dict, sender: str):
        account_id = message["a"]
        if self.remote_match.get(account_id) != sender:
            return None
        return self.game.online.get(account_id)

    def _matched(self, message: dict, sender: str) -> None:
        account_id = message["a"]
        self.remote_match[account_id] = sender
        self.forwarded.pop(account_id, None)
        self.game.queue.remove(account_id)
        if self.handoff is not None:  # a worker of this server: the player goes there
            self.handoff.give(account_id, sender)

    def _state(self, message: dict, sender: str) -> None:
        connection = self._connection(message, sender)
        if connection is not None and hasattr(connection, "channel"):
            connection.channel.send_text(state_packet(message["t"], message["s"], message["x"]))

    def _end(self, message: dict, sender: str) -> None:
        connection = self._connection(message, sender)
        self.remote_match.pop(message["a"], None)
        self.forwarded.pop(message["a"], None)
        if connection is None:
            return
        if not message["saved"]:
            connection.fail("result_not_saved", "the match ended but its result could not "
                                                "be saved; it does not count")
            return
        connection.send("end_game_state_1", [message["stats"], message["w"]],
                        player_id=message["s"])

    def _send(self, message: dict, sender: str) -> None:
        connection = self._connection(message, sender)
        if connection is not None:
            connection.send(message["f"], message["d"], **message["e"])

    # -- the running node -------------------------------------------------------------------

    def _remote_side(self, message: dict, sender: str) -> Optional[tuple]:
        match = self.game.match_of.get(message["a"])
        if match is None or match.ending:
            return None
        side = match.side_of(message["a"])
        link = match.links.get(side)
        if not isinstance(link, RemoteLink) or link.node != sender:
            return None
        return match, side

    def _input(self, message: dict, sender: str) -> None:
        found = self._remote_side(message, sender)
        if found is None:
            return
        try:
            control = parse_input(message["d"])
        except ValueError:
            return  # its own node checked it already
        match, side = found
        match.inputs[side] = control

    def _gone(self, message: dict, sender: str) -> None:
        found = self._remote_side(message, sender)
        if found is None:
            return
        match, side = found
        self.game.seat_dropped(match, side)

    def _back(self, message: dict, sender: str) -> None:
        account_id = message["a"]
        match = self.game.match_of.get(account_id)
        if match is None or match.ending or account_id in self.game.online:
            return
        side = match.side_of(account_id)
        match.links[side] = RemoteLink(self, sender, match.accounts[side])
        match.gone_since.pop(side, None)
        self.bus.publish("novaglide.matched", {"a": account_id}, [sender])
        log.info("novaglide: {name} rejoined match {match_id} from node {node}",
                 name=match.accounts[side].name, match_id=match.id, node=sender)
