"""`[server] workers = 2`: one `twistd gamed` on PostgreSQL and Redis, a supervisor and two
workers behind the same ports, acting as one server. Every game is played with its two
players on different workers; a worker killed mid-play is started again and its players
go on; SIGTERM drains both workers and the supervisor exits.

A client is put on a chosen worker through the one shared socket by stopping the other
worker (SIGSTOP) while it connects: only the running one can accept (UDP: a source port
whose datagrams the running worker answers is one the kernel hashes to it). Where each
player ended up is read back from /api/players/{name} ("nodes").
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import time
import types
from contextlib import contextmanager

import pytest

from gamed.blockattack.client import BlockattackClient
from tests.cluster.test_blockattack import pump
from tests.cluster.test_daemons import get, novaglide_login, wait_for
from tests.cluster.test_novaglide import packet, read_until
from tests.cluster.test_rooms import RoomsClient
from tests.cluster.test_uttt import Player, play
from tests.cluster.redisutil import REDIS_URL, BlockingRedis

W0, W1 = "srv-w0", "srv-w1"


@pytest.fixture(scope="module")
def server(cluster_database, tmp_path_factory):
    from gamed.cluster.settings import parse_redis_url
    from tests.integration.harness import Daemon

    prefix = "gamedtest:%s:" % secrets.token_hex(4)
    config = ('[server]\nworkers = 2\n'
              '[cluster]\nredis_url = "%s"\nnode_name = "srv"\nkey_prefix = "%s"\n'
              'heartbeat = 0.2\ntimeout = 3.0\n'
              '[novaglide]\nrejoin_grace = 1.0\n' % (REDIS_URL, prefix))
    daemon = Daemon(tmp_path_factory.mktemp("workers"), config, database_url=cluster_database)
    daemon.start()
    wait_for(lambda: all_up(daemon), "both workers up", timeout=60)
    yield daemon
    if daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait(10)
    for pid in worker_pids(daemon).values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    url = parse_redis_url(REDIS_URL)
    client = BlockingRedis(url.host, url.port, url.db)
    client.delete_prefix(prefix)
    client.close()


def all_up(daemon) -> bool:
    status, body = get(daemon, "/healthz")
    return status == 200 and body.get("workers") == {W0: "up", W1: "up"}


def worker_pids(daemon) -> dict:
    """The latest pid of each worker, from the supervisor's log."""
    return {name: int(pid) for name, pid in
            re.findall(r"worker (\S+) started \(pid (\d+)\)", daemon.log())}


@contextmanager
def only(daemon, name):
    """The other workers stopped meanwhile: a connection made now is `name`'s."""
    others = [pid for worker, pid in worker_pids(daemon).items() if worker != name]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def nodes_of(daemon, name):
    return get(daemon, "/api/players/%s" % name)[1].get("nodes")


def on_worker(daemon, worker, connect):
    with only(daemon, worker):
        return connect()


def test_uttt_players_on_two_workers(server):
    ann = on_worker(server, W0, lambda: login_uttt(server, "ann_wk"))
    bob = on_worker(server, W1, lambda: login_uttt(server, "bob_wk"))
    wait_for(lambda: nodes_of(server, "ann_wk") == [W0] and nodes_of(server, "bob_wk") == [W1],
             "ann on w0, bob on w1, seen from any worker")
    ann.send("match_request", {"player": "bob_wk"})
    assert ann.wait("match_request_response")["success"]
    match_id = bob.wait("match_update")["id"]
    play(ann, [bob], match_id, (1, 1, 1, 1))
    play(bob, [ann], match_id, (1, 1, 0, 0))


def login_uttt(daemon, name):
    """Logged in (answered: accepted by the running worker), its session token kept."""
    player = Player(daemon)
    player.token = player.login(name, "pw-" + name)
    return player


def test_novaglide_players_on_two_workers(server):
    ann = on_worker(server, W0, lambda: novaglide_login(server, "ann_wn"))
    bob = on_worker(server, W1, lambda: novaglide_login(server, "bob_wn"))
    wait_for(lambda: nodes_of(server, "ann_wn") == [W0] and nodes_of(server, "bob_wn") == [W1],
             "ann on w0, bob on w1")
    for client in (ann, bob):
        client.send(packet("queued_solo", ["no_data"]))
    states = [read_until(c, lambda m: m.get("flag") == "game_state_1", "a state")
              for c in (ann, bob)]
    assert {states[0]["data"][0], states[1]["data"][0]} == {1, 2}
    assert states[0]["data"][4:6] == states[1]["data"][4:6]  # one match, both names
    # the player of the other worker was handed over to the match's: both play there
    wait_for(lambda: nodes_of(server, "ann_wn") == nodes_of(server, "bob_wn")
             and len(nodes_of(server, "ann_wn")) == 1, "both on the match's worker")
    assert re.search(r"novaglide: (ann|bob)_wn handed over to worker srv-w[01]", server.log())
    for client in (ann, bob):  # and the states go on reaching both
        read_until(client, lambda m: m.get("flag") == "game_state_1", "a state")
    bob.close()  # past the rejoin grace ann wins, recorded once
    end = read_until(ann, lambda m: m.get("flag") == "end_game_state_1", "the end")
    assert end["data"][1] == "ann_wn"
    wait_for(lambda: get(server, "/api/players/ann_wn")[1]["games"].get("novaglide"),
             "recorded")
    assert get(server, "/api/players/bob_wn")[1]["games"]["novaglide"]["losses"] == 1


def rooms_login(daemon, name):
    client = RoomsClient(daemon)
    client.send({"id": 0, "type": "login", "details": {"username": name}})
    return client, client.wait("login_response")["playerId"]


def rooms_on(daemon, worker):
    """{worker: rooms lines connections} read from /metrics."""
    text = urllib_get(daemon, "/metrics")
    found = re.search(r'gamed_connections\{service="rooms",transport="lines",worker="%s"\} '
                      r'(\S+)' % worker, text)
    return float(found.group(1)) if found else 0.0


def test_a_player_joining_a_room_of_another_worker_is_handed_over_there(server):
    host, host_id = on_worker(server, W0, lambda: rooms_login(server, "hostwk"))
    guest, guest_id = on_worker(server, W1, lambda: rooms_login(server, "guestwk"))
    # rooms players are no accounts: the workers' connection gauges show where they are
    wait_for(lambda: rooms_on(server, W0) == 1.0 and rooms_on(server, W1) == 1.0,
             "host on w0, guest on w1")
    host.send({"id": 1, "type": "room_create"})
    invite = host.wait("room_create_response")["inviteId"]
    # the join and a frame right behind it, in one write: both reach the room's worker
    guest.sock.sendall(json.dumps({"id": 2, "type": "room_join", "inviteId": invite}).encode()
                       + b'\n{"id": 3, "type": "room_leave"}\n{"id": 4, "type": "room_j')
    joined = guest.wait("room_join_response")
    assert joined["result"] == "ok", joined
    assert [p["id"] for p in joined["players"]] == [host_id, guest_id]
    assert guest.wait("room_leave_response")["result"] == "ok"
    guest.send_text('oin", "inviteId": "%s"}' % invite)  # the rest of the cut line
    assert guest.wait("room_join_response")["result"] == "ok"
    # the guest's socket is served by w0 now (handed over, not tunnelled)
    wait_for(lambda: rooms_on(server, W0) == 2.0 and rooms_on(server, W1) == 0.0,
             "the guest's connection on w0")
    assert "%s handed over to worker %s" % (guest_id, W0) in server.log()
    host.send({"id": 2, "type": "room_start", "connectionType": "server_broadcast"})
    for client in (host, guest):
        start = client.wait("event_room_start")
        client.send({"id": 9, "type": "event_room_start_ack", "requestId": start["id"]})
    for n in range(10):
        guest.send_text('{"n":%d}' % n)
        host.send_text('{"m":%d,"sender":"forged"}' % n)
    for n in range(10):
        assert host.recv_text() == '{"sender":"%s","n":%d}' % (guest_id, n)
    for n in range(10):
        assert guest.recv_text() == '{"sender":"%s","m":%d}' % (host_id, n)
    guest.sock.close()
    left = json.loads(host.recv_text()[1:])
    assert left["type"] == "player_left" and left["player"] == guest_id
    host.sock.close()


class UdpPlayer:
    """A blockattack player whose source port the kernel hashes to a chosen worker."""

    PROBE = json.dumps({"command": "probe", "pad": "x" * 200}).encode()

    def __init__(self, daemon, worker, name, opponent):
        self.server = ("127.0.0.1", daemon.ports["blockattack"])
        with only(daemon, worker):
            for _ in range(40):
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sock.bind(("127.0.0.1", 0))
                self.sock.settimeout(0.3)
                self.sock.sendto(self.PROBE, self.server)
                try:
                    self.sock.recvfrom(65536)  # answered: the running worker has it
                    break
                except socket.timeout:
                    self.sock.close()
            else:
                raise AssertionError("no source port reached " + worker)
        time.sleep(0.3)  # the other worker answers the probes it held; they are not ours
        self.sock.settimeout(0.05)
        self.client = BlockattackClient(name, opponent,
                                        lambda data: self.sock.sendto(data, self.server),
                                        types.SimpleNamespace(seconds=time.time))

    def drain(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                return
            message = json.loads(data)
            if message.get("command") != "error":
                self.client.received(data)


def test_blockattack_players_on_two_workers(server):
    xena = UdpPlayer(server, W0, "xena_wb", "yuri_wb")
    yuri = UdpPlayer(server, W1, "yuri_wb", "xena_wb")
    both = (xena, yuri)
    pump(both, lambda p: p.client.connect(), lambda: xena.client.start and yuri.client.start,
         "game_start on both workers")
    assert xena.client.game_name == yuri.client.game_name
    wait_for(lambda: len(set((nodes_of(server, "xena_wb") or [W0, W1])
                             + (nodes_of(server, "yuri_wb") or [W0, W1]))) == 1,
             "the game runs on one worker")
    pump(both, lambda p: p.client.flux(), lambda: xena.client.state and yuri.client.state,
         "game_flux replies")
    assert xena.client.state["opponent_blocks"] == yuri.client.board
    pump([yuri], lambda p: p.client.forfeit(), lambda: yuri.client.end is not None,
         "game_end after the forfeit")
    pump([xena], lambda p: None, lambda: xena.client.end is not None, "game_end on x")
    assert xena.client.end["winner"] == "xena_wb"
    wait_for(lambda: get(server, "/api/players/xena_wb")[1]["games"].get("blockattack"),
             "the result recorded once")
    assert get(server, "/api/players/xena_wb")[1]["games"]["blockattack"]["wins"] == 1


def test_a_killed_worker_is_started_again_and_its_players_go_on(server):
    ann = on_worker(server, W0, lambda: login_uttt(server, "ann_wk2"))
    bob = on_worker(server, W1, lambda: login_uttt(server, "bob_wk2"))
    token_bob = bob.token
    wait_for(lambda: nodes_of(server, "bob_wk2") == [W1], "bob on w1")
    ann.send("match_request", {"player": "bob_wk2"})
    match_id = bob.wait("match_update")["id"]
    play(ann, [bob], match_id, (1, 1, 1, 1))
    killed = worker_pids(server)[W1]
    os.kill(killed, signal.SIGKILL)
    # the supervisor tells w0, which buries w1's run at once (not after the 3 s timeout)
    wait_for(lambda: "cluster: node %s ended; forgetting its players" % W1 in server.log(),
             "w0 burying w1 as soon as it died", timeout=30)
    with pytest.raises((EOFError, ConnectionError)):
        bob.wait("never")
    # bob comes back through the same address (whichever worker takes him) and goes on
    again = Player(server)
    again.send("reconnect", {"id": token_bob})
    assert again.wait("reconnect_response")["success"]
    resumed = again.wait("match_update", lambda d: d["id"] == match_id)
    assert resumed["match_state"]["active_player"] == "bob_wk2"
    play(again, [ann], match_id, (1, 1, 0, 0))
    # the supervisor started w1 again; the server is whole
    wait_for(lambda: server.log().count("supervisor: worker %s listening" % W1) == 2,
             "w1 started again and listening", timeout=60)
    assert worker_pids(server)[W1] != killed
    wait_for(lambda: all_up(server), "both workers up again", timeout=60)
    assert "worker srv-w1 (pid %d) died (signal SIGKILL)" % killed in server.log()
    play(ann, [again], match_id, (0, 0, 2, 2))


def test_metrics_are_the_whole_servers(server):
    def scraped():
        text = urllib_get(server, "/metrics")
        return all('worker="%s"' % w in text for w in (W0, W1)) and text

    text = wait_for(scraped, "both workers' series")
    assert re.search(r'gamed_connections_opened_total\{service="uttt",worker="srv-w0"\} [1-9]',
                     text), text


def urllib_get(daemon, path) -> str:
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (daemon.ports["http"], path),
                                timeout=10) as reply:
        return reply.read().decode()


def test_sigterm_drains_every_worker_and_the_supervisor_exits(server):
    pids = worker_pids(server)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(40) in (0, -signal.SIGTERM), server.log()
    log = server.log()
    for name in (W0, W1):
        assert "supervisor: worker %s (pid %d) stopped" % (name, pids[name]) in log
        assert "cluster: node %s left" % name in log
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
