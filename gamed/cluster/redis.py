"""Many nodes: presence, queues and the bus on Redis (txredisapi, never blocking).

Keys and channels (P = `[cluster] key_prefix`):
  P node:{name}       the node's heartbeat, a key that expires after `timeout`
  P nodes             set of the names of the nodes that joined
  P presence:{name}   hash "account:game" -> 1 of the node's players, "_seq" -> its
                      sequence number (events carry the same numbers: older ones are ignored)
  P queue:{game}      hash key -> JSON entry of the players waiting for a random opponent
  P dead:{name}       set when the node was counted dead (it reads it on its return:
                      the others dropped what they held for it)
  P bus / P bus:{name}  channels to every node / to one node; JSON {"n": node,
                      "i": its run (incarnation), "b": [[topic, message], ...]}

Each node mirrors the others' presence in memory (a snapshot when a node appears or
after a reconnection, then their events), so reads stay synchronous. A node whose
heartbeat key expired is dead: the first node to notice deletes its presence and queue
entries and tells the others. Every node then calls its games' `on_node_gone` callbacks
(once per node and run: also when a node left, restarted under the same name, or this
node was cut off or counted dead itself). See docs/cluster.md.
"""

from __future__ import annotations

import json
import secrets
from typing import Iterable, Optional

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from gamed.cluster.local import LocalPresence
from gamed.cluster.redislink import RedisDown, RedisLink
from gamed.cluster.settings import ClusterSettings, RedisUrl

log = Logger(namespace="gamed.cluster")

#: take several queue entries, all or none (one script: atomic in Redis)
TAKE_SCRIPT = """
local out = {}
for i, k in ipairs(ARGV) do
  local v = redis.call('HGET', KEYS[1], k)
  if not v then return nil end
  out[i] = v
end
for i, k in ipairs(ARGV) do redis.call('HDEL', KEYS[1], k) end
return out
"""

#: bury a node whose heartbeat key expired, unless it beat again meanwhile (-1); else
#: whether this call removed it from the set (1: the caller tells the others)
BURY_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local removed = redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if removed == 1 then redis.call('SET', KEYS[4], '1', 'PX', ARGV[2]) end
return removed
"""

#: end a run's heartbeat now: delete the key only while it still holds that run's
#: incarnation (a new run under the same name may have beaten already)
END_RUN_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisPresence(LocalPresence):
    """This node's sessions (as LocalPresence) plus a mirror of every other node's."""

    def __init__(self, cluster: "RedisCluster"):
        super().__init__(cluster.node)
        self.cluster = cluster
        self.remote: dict[str, dict[int, set[str]]] = {}  # node -> account -> games
        self.remote_seq: dict[str, int] = {}
        self.seq = 0

    # -- reads: this node and the mirror ------------------------------------------------

    def _elsewhere(self, account_id: int, game: Optional[str]) -> bool:
        for accounts in self.remote.values():
            games = accounts.get(account_id)
            if games and (game is None or game in games):
                return True
        return False

    def is_online(self, account_id: int, game: Optional[str] = None) -> bool:
        return self.here(account_id, game) or self._elsewhere(account_id, game)

    def games_of(self, account_id: int) -> list[str]:
        games = set(super().games_of(account_id))
        for accounts in self.remote.values():
            games |= accounts.get(account_id, set())
        return sorted(games)

    def nodes_of(self, account_id: int, game: str) -> set[str]:
        return {node for node, accounts in self.remote.items()
                if game in accounts.get(account_id, ())}

    def count(self, game: str) -> int:
        accounts = {a for a, games in self._sessions.items() if game in games}
        for remote in self.remote.values():
            accounts |= {a for a, games in remote.items() if game in games}
        return len(accounts)

    # -- this node's changes -------------------------------------------------------------

    def _local_changed(self, account_id: int, game: str, online: bool) -> None:
        if not self._elsewhere(account_id, game):
            self._tell(account_id, game, online)
        self.seq += 1
        link, key = self.cluster.link, self.cluster.key("presence", self.node)
        if not link.up:
            return  # written again in full when Redis is back
        field = "%d:%s" % (account_id, game)
        if online:
            d = link.call("HSET", key, field, 1, "_seq", self.seq)
        else:
            d = link.call("HDEL", key, field)
            d.addCallback(lambda _, seq=self.seq: link.call("HSET", key, "_seq", seq))
        d.addErrback(self.cluster.write_failed, "presence")
        self.cluster.bus.publish("presence", {"a": account_id, "g": game, "on": online,
                                              "s": self.seq})

    def snapshot_fields(self) -> list:
        """HSET arguments for every local session and the sequence number."""
        args = []
        for account, games in self.local_games().items():
            for game in games:
                args += ["%d:%s" % (account, game), 1]
        return args + ["_seq", self.seq]

    def take_over(self, game: str, account_id: int) -> None:
        nodes = self.nodes_of(account_id, game)
        if nodes:
            self.cluster.bus.publish("takeover", {"g": game, "a": account_id}, nodes)

    def taken_over(self, message: dict, sender: str) -> None:
        for callback in self._takeover.get(message.get("g"), ()):
            callback(message.get("a"))

    # -- the other nodes -----------------------------------------------------------------

    def remote_event(self, message: dict, sender: str) -> None:
        seq = message.get("s", 0)
        if seq <= self.remote_seq.get(sender, -1):
            return  # older than what the snapshot already held
        self.remote_seq[sender] = seq
        account, game, online = message["a"], message["g"], bool(message["on"])
        before = self.is_online(account, game)
        games = self.remote.setdefault(sender, {}).setdefault(account, set())
        if online:
            games.add(game)
        else:
            games.discard(game)
            if not games:
                del self.remote[sender][account]
        if self.is_online(account, game) != before:
            self._tell(account, game, online)

    def replace_node(self, node: str, accounts: Optional[dict], seq: int = 0) -> None:
        """A node's players from a snapshot (None: the node is gone)."""
        if accounts is not None and seq < self.remote_seq.get(node, -1):
            return  # events newer than this snapshot were applied already
        before = {(a, g) for a, games in self.remote.get(node, {}).items() for g in games}
        after = {(a, g) for a, games in (accounts or {}).items() for g in games}
        changed = [(pair, self.is_online(*pair)) for pair in before ^ after]
        if accounts is None:
            self.remote.pop(node, None)
            self.remote_seq.pop(node, None)
        else:
            self.remote[node] = accounts
            self.remote_seq[node] = seq
        for (account, game), was in changed:
            now = self.is_online(account, game)
            if now != was:
                self._tell(account, game, now)


class RedisBus:
    """Messages published in one reactor turn go out together: consecutive ones for the
    same channel as one PUBLISH of a JSON list (a relay burst costs one Redis command,
    not one per frame), the order of everything published kept."""

    def __init__(self, cluster: "RedisCluster"):
        self.cluster = cluster
        self.node = cluster.node
        self.handlers: dict[str, list] = {}
        self.dropped = 0
        self._outbox: list = []  # (channel, [topic, message]) in publish order
        self._flush_call = None

    def publish(self, topic: str, message: dict,
                nodes: Optional[Iterable[str]] = None) -> None:
        if not self.cluster.link.up:
            self.dropped += 1
            return
        channels = ([self.cluster.key("bus")] if nodes is None
                    else [self.cluster.key("bus", node) for node in nodes if node != self.node])
        for channel in channels:
            self._outbox.append((channel, [topic, message]))
        if channels and self._flush_call is None:
            self._flush_call = self.cluster.reactor.callLater(0, self._flush)

    def _flush(self) -> defer.Deferred:
        """Send what was published; fires when Redis has it (used before leaving)."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        outbox, self._outbox = self._outbox, []
        link = self.cluster.link
        if not link.up:
            self.dropped += len(outbox)
            return defer.succeed(None)
        sent = []
        run_channel, run = None, []
        for channel, item in outbox + [(None, None)]:
            if channel != run_channel and run:
                payload = json.dumps({"n": self.node, "i": self.cluster.incarnation,
                                      "b": run}, separators=(",", ":"))
                sent.append(link.call("PUBLISH", run_channel, payload).addErrback(
                    self.cluster.write_failed, "publish"))
                run = []
            run_channel = channel
            if item is not None:
                run.append(item)
        return defer.gatherResults(sent)

    flush = _flush

    def subscribe(self, topic: str, handler) -> None:
        self.handlers.setdefault(topic, []).append(handler)

    def received(self, channel: str, payload: str) -> None:
        try:
            envelope = json.loads(payload)
            sender, batch = envelope["n"], envelope["b"]
            items = [(topic, message) for topic, message in batch]
        except (ValueError, KeyError, TypeError):
            log.warn("cluster: unreadable message on {channel}", channel=channel)
            return
        if sender == self.node:
            return
        self.cluster.heard(sender, envelope.get("i"))
        for topic, message in items:
            for handler in self.handlers.get(topic, ()):
                try:
                    handler(message, sender)
                except Exception:
                    log.failure("cluster: handling {topic} from {sender} failed",
                                topic=topic, sender=sender)


class RedisQueue:
    """P queue:{game} in Redis; while this node is cut off, a queue of its own.

    Cut off, the node keeps pairing its players: an entry that joins meanwhile is known to
    this node alone (`unshared`), so it may be taken here without asking anyone. Entries
    that waited before the cut are not offered meanwhile (another node may still take them
    from Redis). When the node is back, every entry of its own is written to Redis again
    and those that left meanwhile are deleted there.
    """

    def __init__(self, cluster: "RedisCluster"):
        self.cluster = cluster
        self.mine: dict[str, dict[str, dict]] = {}  # this node's entries, to write again
        self.unshared: dict[str, set] = {}  # game -> keys joined while cut off
        self.unlisted: dict[str, set] = {}  # game -> keys that left while cut off
        self.taken_callbacks: dict[str, list] = {}

    def _key(self, game: str) -> str:
        return self.cluster.key("queue", game)

    def join(self, game: str, key: str, entry: dict) -> defer.Deferred:
        entry = dict(entry)
        entry.setdefault("node", self.cluster.node)  # set when one waits again elsewhere
        if entry["node"] != self.cluster.node:
            return self.cluster.link.call("HSET", self._key(game), key, json.dumps(entry))
        self.mine.setdefault(game, {})[key] = entry
        self.unlisted.get(game, set()).discard(key)
        if not self.cluster.link.up:
            self.unshared.setdefault(game, set()).add(key)
            return defer.succeed(None)
        d = self.cluster.link.call("HSET", self._key(game), key, json.dumps(entry))
        # cut off on the way: it waits here all the same, written again on the rejoin
        return d.addErrback(lambda reason: reason.trap(RedisDown) and None)

    def leave(self, game: str, key: str) -> defer.Deferred:
        self.mine.get(game, {}).pop(key, None)
        if not self.cluster.link.up:
            if key in self.unshared.get(game, ()):
                self.unshared[game].discard(key)
            else:
                self.unlisted.setdefault(game, set()).add(key)
            return defer.succeed(None)
        return self.cluster.link.call("HDEL", self._key(game), key)

    def entries(self, game: str) -> defer.Deferred:
        if not self.cluster.link.up:
            mine = self.mine.get(game, {})
            return defer.succeed({key: dict(mine[key]) for key in self.unshared.get(game, ())
                                  if key in mine})

        def decode(flat):
            flat = list(flat or [])
            return {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}

        return self.cluster.link.call("HGETALL", self._key(game)).addCallback(decode)

    def take(self, game: str, keys: Iterable[str]) -> defer.Deferred:
        keys = list(keys)
        if not self.cluster.link.up:
            unshared, mine = self.unshared.get(game, set()), self.mine.get(game, {})
            if not all(key in unshared and key in mine for key in keys):
                return defer.succeed(None)
            unshared.difference_update(keys)
            return defer.succeed({key: mine.pop(key) for key in keys})

        def taken(values):
            if not values:
                return None
            found = {key: json.loads(value) for key, value in zip(keys, values)}
            owners: dict[str, list] = {}
            for key, entry in found.items():
                self.mine.get(game, {}).pop(key, None)
                owners.setdefault(entry.get("node"), []).append(key)
            for node, node_keys in owners.items():
                if node != self.cluster.node:
                    self.cluster.bus.publish("queue.taken", {"g": game, "k": node_keys}, [node])
            return found

        return self.cluster.link.call("EVAL", TAKE_SCRIPT, 1, self._key(game),
                                      *keys).addCallback(taken)

    def on_taken(self, game: str, callback) -> None:
        self.taken_callbacks.setdefault(game, []).append(callback)

    def taken_here(self, message: dict, sender: str) -> None:
        game = message.get("g")
        for key in message.get("k", ()):
            self.mine.get(game, {}).pop(key, None)
            for callback in self.taken_callbacks.get(game, ()):
                callback(key)

    @defer.inlineCallbacks
    def rejoin(self):
        """Back in the cluster: this node's entries go to Redis (those that joined while
        it was cut off too: they are shared from now on), those that left are deleted."""
        self.unshared.clear()
        unlisted, self.unlisted = self.unlisted, {}
        for game, entries in self.mine.items():
            for key, entry in list(entries.items()):
                yield self.cluster.link.call("HSET", self._key(game), key, json.dumps(entry))
        for game, keys in unlisted.items():
            gone = [key for key in keys if key not in self.mine.get(game, {})]
            if gone:
                yield self.cluster.link.call("HDEL", self._key(game), *gone)

    @defer.inlineCallbacks
    def purge(self, node: str, games: Iterable[str]):
        """Remove a dead node's entries."""
        for game in games:
            entries = yield self.entries(game)
            stale = [key for key, entry in entries.items() if entry.get("node") == node]
            if stale:
                yield self.cluster.link.call("HDEL", self._key(game), *stale)


class RedisDirectory:
    """P dir:{kind}: a hash key -> node."""

    def __init__(self, cluster: "RedisCluster"):
        self.cluster = cluster
        self.mine: dict[str, set] = {}  # written again after a cut

    @defer.inlineCallbacks
    def rejoin(self):
        for kind, keys in self.mine.items():
            for key in keys:
                yield self.claim(kind, key)

    def claim(self, kind: str, key: str) -> defer.Deferred:
        self.mine.setdefault(kind, set()).add(key)
        return self.cluster.link.call("HSET", self.cluster.key("dir", kind), key,
                                      self.cluster.node)

    def release(self, kind: str, key: str) -> defer.Deferred:
        self.mine.get(kind, set()).discard(key)
        return self.cluster.link.call("HDEL", self.cluster.key("dir", kind), key)

    def lookup(self, kind: str, key: str) -> defer.Deferred:
        return self.cluster.link.call("HGET", self.cluster.key("dir", kind), key)

    @defer.inlineCallbacks
    def purge(self, node: str, kinds):
        for kind in kinds:
            flat = yield self.cluster.link.call("HGETALL", self.cluster.key("dir", kind))
            flat = list(flat or [])
            stale = [flat[i] for i in range(0, len(flat), 2) if flat[i + 1] == node]
            if stale:
                yield self.cluster.link.call("HDEL", self.cluster.key("dir", kind), *stale)


class RedisCluster(service.Service):
    """This node's membership: heartbeat, the mirror of the others, rejoining."""

    name = "cluster"
    clustered = True

    def __init__(self, reactor, settings: ClusterSettings, node: str, url: RedisUrl,
                 games: Iterable[str] = ()):
        self.reactor = reactor
        self.settings = settings
        self.node = node
        self.prefix = settings.key_prefix
        self.games = tuple(games)  # queues purged of a dead node's entries
        self.incarnation = secrets.token_hex(8)
        self.link = RedisLink(reactor, url, [self.key("bus"), self.key("bus", node)],
                              self._message, self._up, self._down,
                              reply_timeout=settings.timeout)
        self.presence = RedisPresence(self)
        self.bus = RedisBus(self)
        self.queue = RedisQueue(self)
        self.directory = RedisDirectory(self)
        self.live: set[str] = set()  # other nodes seen alive
        self.incarnations: dict[str, str] = {}  # other node -> the run last heard from
        self._departed: set[str] = set()  # nodes whose departure the games were told
        self._gone_callbacks: list = []
        self._rejoining = False
        self._beat: Optional[task.LoopingCall] = None
        self._forget_call = None
        self._beating = False
        self._joined_before = False
        self._rejoined: list = []
        self.bus.subscribe("presence", self.presence.remote_event)
        self.bus.subscribe("takeover", self.presence.taken_over)
        self.bus.subscribe("queue.taken", self.queue.taken_here)
        self.bus.subscribe("node", self._node_news)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def problem(self) -> Optional[str]:
        if self.link.up:
            return None
        return self.link.problem or "redis: not connected"

    def on_rejoined(self, callback) -> None:
        self._rejoined.append(callback)

    def on_node_gone(self, callback) -> None:
        self._gone_callbacks.append(callback)

    def is_up(self, node: str) -> bool:
        return node == self.node or node in self.live

    # -- other nodes coming and going ------------------------------------------------------

    def heard(self, node: str, incarnation: Optional[str]) -> None:
        """A message or a heartbeat of `node`'s run `incarnation`: a new run under a known
        name means the old one died (what was held for it goes first)."""
        known = self.incarnations.get(node)
        if incarnation is None or known == incarnation:
            return
        if known is not None:
            log.info("cluster: node {node} restarted", node=node)
            self.forget_node(node)
        self.incarnations[node] = incarnation
        self._departed.discard(node)

    def forget_node(self, node: str) -> None:
        """`node` is gone: its players are forgotten, the games told once."""
        if node == self.node:
            return
        self.live.discard(node)
        self.incarnations.pop(node, None)
        self.presence.replace_node(node, None)
        if node in self._departed:
            return
        self._departed.add(node)
        for callback in list(self._gone_callbacks):
            try:
                callback(node)
            except Exception:
                log.failure("cluster: a node-gone callback for {node} failed", node=node)

    def _known(self) -> set:
        return set(self.incarnations) | self.live | set(self.presence.remote)

    def _forget_known(self) -> None:
        for node in sorted(self._known()):
            self.forget_node(node)

    def _buried(self) -> None:
        """The other nodes counted this node dead (it was silent past the timeout) and
        dropped what they held for it: it drops what it holds for them and joins again."""
        if self._rejoining or not self.link.up:
            return
        log.warn("cluster: node {node} was counted dead by the others; joining again",
                 node=self.node)
        self._forget_known()
        self._rejoin().addErrback(lambda f: log.failure("cluster: joining failed", f))

    def write_failed(self, reason, what: str) -> None:
        if not reason.check(RedisDown):
            log.warn("cluster: {what} failed: {error}", what=what,
                     error=reason.getErrorMessage())

    # -- service -------------------------------------------------------------------------

    def startService(self):
        service.Service.startService(self)
        self.link.start()
        self._beat = task.LoopingCall(self.heartbeat)
        self._beat.clock = self.reactor
        self._beat.start(self.settings.heartbeat, now=False)

    def stopService(self):
        service.Service.stopService(self)
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        d = self._leave() if self.link.up else defer.succeed(None)
        d.addErrback(lambda f: log.warn("cluster: leaving failed: {e}", e=f.getErrorMessage()))
        d.addTimeout(self.settings.timeout, self.reactor)
        d.addBoth(lambda _: self.link.stop())
        return d

    @defer.inlineCallbacks
    def _leave(self):
        call = self.link.call
        yield call("DEL", self.key("node", self.node), self.key("presence", self.node))
        yield call("SREM", self.key("nodes"), self.node)
        yield self.queue.purge(self.node, self.games)
        yield self.directory.purge(self.node, self.games)
        self.bus.publish("node", {"gone": True})
        yield self.bus.flush()
        log.info("cluster: node {node} left", node=self.node)

    # -- link states ---------------------------------------------------------------------

    def _message(self, channel: str, payload: str) -> None:
        self.bus.received(channel, payload)

    def _up(self) -> None:
        if self._forget_call is not None and self._forget_call.active():
            self._forget_call.cancel()
        self._forget_call = None
        d = self._rejoin()
        d.addErrback(lambda f: log.failure("cluster: joining failed", f))

    def _down(self, problem: str) -> None:
        # cut off: after the timeout the others have forgotten this node's players, and
        # this node forgets theirs (no ghosts in its API meanwhile)
        self._forget_call = self.reactor.callLater(self.settings.timeout, self._forget_all)

    def _forget_all(self) -> None:
        self._forget_call = None
        self._forget_known()

    def _rejoin(self) -> defer.Deferred:
        self._rejoining = True

        def done(result):
            self._rejoining = False
            return result

        return self._join().addBoth(done)

    @defer.inlineCallbacks
    def _join(self):
        call = self.link.call
        if not self._joined_before:
            yield self._forget_earlier_life()
        yield self._announce()
        dead_key = self.key("dead", self.node)
        if (yield call("GET", dead_key)) is not None:
            # counted dead while cut off: the others dropped what they held for this node
            yield call("DEL", dead_key)
            self._forget_known()
        presence_key = self.key("presence", self.node)
        yield call("DEL", presence_key)
        yield call("HSET", presence_key, *self.presence.snapshot_fields())
        yield self.queue.rejoin()
        yield self.directory.rejoin()
        self.bus.publish("node", {"joined": True})
        log.info("cluster: node {node} joined", node=self.node)
        yield self.heartbeat(resync=True)
        if self._joined_before:
            for callback in list(self._rejoined):
                try:
                    callback()
                except Exception:
                    log.failure("cluster: a rejoin callback failed")
        self._joined_before = True

    @defer.inlineCallbacks
    def _forget_earlier_life(self):
        """This node's name was in the cluster and did not leave (killed, and started
        again -- a worker restarted by its supervisor -- perhaps before its heartbeat
        expired): its queue and directory entries are gone with it (the other nodes tell
        the new run from the old by its incarnation and drop what they held for the old)."""
        earlier = yield self.link.call("SISMEMBER", self.key("nodes"), self.node)
        if not earlier:
            return
        log.info("cluster: node {node} was here before and did not leave; forgetting that",
                 node=self.node)
        yield self.queue.purge(self.node, self.games)
        yield self.directory.purge(self.node, self.games)

    def _announce(self) -> defer.Deferred:
        """Beat; fires with 1 when this node was not in the set of nodes (it was buried)."""
        call = self.link.call
        d = call("SET", self.key("node", self.node), self.incarnation, "PX",
                 int(self.settings.timeout * 1000))
        return d.addCallback(lambda _: call("SADD", self.key("nodes"), self.node))

    def _node_news(self, message: dict, sender: str) -> None:
        gone = sender if message.get("gone") else message.get("dead")
        if gone == self.node:
            self._buried()
        elif gone is not None:
            self.forget_node(gone)
        elif message.get("joined"):
            self.live.add(sender)
            self._snapshot(sender).addErrback(self.write_failed, "snapshot")

    # -- heartbeat -----------------------------------------------------------------------

    def heartbeat(self, resync: bool = False) -> defer.Deferred:
        if not self.link.up or (self._beating and not resync):
            return defer.succeed(None)
        self._beating = True
        d = self._heartbeat(resync)
        d.addErrback(self.write_failed, "heartbeat")

        def done(result):
            self._beating = False
            return result

        return d.addBoth(done)

    @defer.inlineCallbacks
    def _heartbeat(self, resync: bool):
        call = self.link.call
        added = yield self._announce()
        if added and not resync and self._joined_before and not self._rejoining:
            self._buried()  # removed from the set by another node: it counted this one dead
            return
        names = [n for n in (yield call("SMEMBERS", self.key("nodes"))) if n != self.node]
        alive = set()
        if names:
            beats = yield call("MGET", *[self.key("node", n) for n in names])
            alive = {n for n, beat in zip(names, beats) if beat is not None}
            for node, beat in zip(names, beats):
                if beat is not None:
                    self.heard(node, beat)
        for node in set(names) - alive:
            yield self._bury(node)
        for node in (self.live | set(self.presence.remote)) - alive:
            self.forget_node(node)
        for node in alive:
            if resync or node not in self.live:
                yield self._snapshot(node)
        self.live = alive

    @defer.inlineCallbacks
    def _snapshot(self, node: str):
        flat = yield self.link.call("HGETALL", self.key("presence", node))
        flat = list(flat or [])
        accounts: dict[int, set[str]] = {}
        seq = 0
        for i in range(0, len(flat), 2):
            field, _value = flat[i], flat[i + 1]
            if field == "_seq":
                seq = int(_value)
                continue
            account, _, game = field.partition(":")
            try:
                accounts.setdefault(int(account), set()).add(game)
            except ValueError:
                continue
        self.presence.replace_node(node, accounts, seq)

    def node_ended(self, node: str) -> defer.Deferred:
        """`node`'s process is known to have ended (a worker whose supervisor saw it
        die): bury it now instead of after the heartbeat timeout, so its players are free
        and `/healthz` says so at once. Every surviving worker is told; the burial happens
        once (BURY_SCRIPT), and only the dead run's heartbeat is ended (END_RUN_SCRIPT)."""
        incarnation = self.incarnations.get(node)
        if node == self.node or incarnation is None or not self.link.up:
            return defer.succeed(None)  # not known here: the heartbeat timeout buries it
        d = self.link.call("EVAL", END_RUN_SCRIPT, 1, self.key("node", node), incarnation)
        d.addCallback(lambda ended: self._bury(node, "ended") if int(ended) else None)
        d.addErrback(self.write_failed, "burying %s" % node)
        return d

    @defer.inlineCallbacks
    def _bury(self, node: str, why: str = "missed its heartbeats"):
        """A node whose heartbeat expired (or ended): forget its players everywhere."""
        call = self.link.call
        tombstone_ms = int(max(60.0, 10 * self.settings.timeout) * 1000)
        removed = yield call("EVAL", BURY_SCRIPT, 4, self.key("node", node), self.key("nodes"),
                             self.key("presence", node), self.key("dead", node), node,
                             tombstone_ms)
        if int(removed) < 0:
            return  # it beat again meanwhile
        log.warn("cluster: node {node} {why}; forgetting its players", node=node, why=why)
        yield self.queue.purge(node, self.games)
        yield self.directory.purge(node, self.games)
        self.forget_node(node)
        if int(removed):
            self.bus.publish("node", {"dead": node})
