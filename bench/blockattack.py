"""game_flux round trips per second: gamed against two reference servers, same run.

    python bench/blockattack.py [--games 50] [--seconds 5] [--window 4] [--rounds 3]

Three servers, each in its own process, get the same load: `--games` concurrent games
(2 players each, one UDP socket per player) in which every player keeps `--window`
`game_flux` datagrams (a full 20x10 board each) in flight and counts the replies:
  (a) a bare Twisted UDP JSON echo: decode the datagram, encode a reply: the framework's
      ceiling for any JSON-over-UDP server;
  (b) the seed's planned design: `socketserver.UDPServer` + `ThreadingMixIn` (a thread per
      datagram) doing the same flux relay (store the board, answer with both boards);
  (c) gamed (`twistd gamed`, blockattack only): pairing first, then every datagram goes
      through the real path (timestamp filter, address binding, rule checks, reply).
Goal: (c) >= 50% of (a) and >= 2x (b). The three run one after the other, `--rounds` times
(the order alternating), each after a wait for a quiet machine; the medians are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import tempfile
import time

from support import (free_port, interleaved, listen, median,  # noqa: E402 (bench/ on path)
                     start_daemon, start_reference_server)

BOARD = [[0] * 10 for _ in range(17)] + [[1, 1, 0, 0, 2, 2, 2, 0, 7, 7]] * 3


# ---------------------------------------------------------------------------------------
# reference servers (python bench/blockattack.py --serve KIND PORTFILE)

def serve_twisted_echo(port_file: str) -> None:
    from twisted.internet import protocol, reactor

    class Echo(protocol.DatagramProtocol):
        def datagramReceived(self, data, address):
            message = json.loads(data)
            self.transport.write(json.dumps({"command": "game_flux",
                                             "timestamp": message.get("timestamp"),
                                             "user_blocks": message.get("user_blocks")})
                                 .encode(), address)

    port = reactor.listenUDP(0, Echo(), interface="127.0.0.1")
    with open(port_file, "w") as handle:
        handle.write(str(port.getHost().port))
    reactor.run()


def serve_socketserver(port_file: str) -> None:
    import socketserver
    import threading

    boards: dict = {}
    lock = threading.Lock()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            message = json.loads(data)
            game, player = message.get("game_name"), message.get("player")
            with lock:
                boards[(game, player)] = (message.get("user_blocks"), message.get("user_score"))
                other = boards.get((game, 1 - player), (None, 0))
            reply = {"timestamp": message.get("timestamp"), "command": "game_flux",
                     "game_name": game, "user_blocks": message.get("user_blocks"),
                     "opponent_blocks": other[0], "user_score": message.get("user_score"),
                     "opponent_score": other[1]}
            sock.sendto(json.dumps(reply).encode(), self.client_address)

    class Server(socketserver.ThreadingMixIn, socketserver.UDPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    with open(port_file, "w") as handle:
        handle.write(str(server.server_address[1]))
    server.serve_forever()


def start_reference(kind: str):
    return start_reference_server(__file__, kind)


def start_gamed(tmp: str):
    port, http_port = free_port(socket.SOCK_DGRAM), free_port()
    proc = start_daemon(tmp, {
        "blockattack": {"listen": listen(port, "udp"), "game_seconds": "3600.0"},
        "http": {"listen": listen(http_port)}}, http_port)
    return proc, port


# ---------------------------------------------------------------------------------------
# load

class Player:
    def __init__(self, server: tuple, game: str, index: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.server = server
        self.game = game
        self.index = index
        self.name = "%s-%d" % (game, index)
        self.stamp = int(time.time() * 1000)
        self.in_flight = 0
        self.replies = 0
        self.last_reply = time.perf_counter()

    def flux(self) -> None:
        self.stamp += 1
        self.sock.sendto(json.dumps({
            "timestamp": self.stamp, "command": "game_flux", "game_name": self.game,
            "player": self.index, "user_blocks": BOARD, "opponent_blocks": None,
            "power_used": None, "user_score": 100, "powers_available": []}).encode(),
            self.server)
        self.in_flight += 1


def pair_in_gamed(players: list) -> None:
    """connect both players of each game until game_start names their game."""
    pending = {p.name: p for p in players}
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for player in list(pending.values()):
            partner = players[players.index(player) ^ 1]
            player.stamp += 1
            player.sock.sendto(json.dumps({"timestamp": player.stamp, "command": "connect",
                                           "self": player.name, "opponent": partner.name})
                               .encode(), player.server)
        time.sleep(0.2)
        for player in list(pending.values()):
            try:
                while True:
                    message = json.loads(player.sock.recv(65536))
                    if message.get("command") == "game_start":
                        player.game = message["game_name"]
                        pending.pop(player.name, None)
            except BlockingIOError:
                pass
    if pending:
        raise RuntimeError("%d players were never paired" % len(pending))
    for player in players:
        player.flux()  # the first flux stops the game_start repeats
    time.sleep(0.5)
    for player in players:
        try:
            while player.sock.recv(65536):
                pass
        except BlockingIOError:
            pass
        player.in_flight = 0


def measure(players: list, seconds: float, window: int) -> float:
    selector = selectors.DefaultSelector()
    for player in players:
        selector.register(player.sock, selectors.EVENT_READ, player)
    start = time.perf_counter()
    warm = start + 1.0
    end = warm + seconds
    counted = None
    while True:
        now = time.perf_counter()
        if counted is None and now >= warm:
            counted = sum(p.replies for p in players)
        if now >= end:
            break
        for player in players:
            if player.in_flight < window:
                player.flux()
        for key, _ in selector.select(timeout=0.01):
            player = key.data
            try:
                while True:
                    player.sock.recv(65536)
                    player.replies += 1
                    player.in_flight = max(0, player.in_flight - 1)
                    player.last_reply = now
            except BlockingIOError:
                pass
        for player in players:  # a datagram lost on the way would stall its window
            if player.in_flight and now - player.last_reply > 0.3:
                player.in_flight = 0
                player.last_reply = now
    total = sum(p.replies for p in players) - counted
    selector.close()
    for player in players:
        player.sock.close()
    return total / seconds


def run(server_port: int, games: int, seconds: float, window: int, gamed: bool) -> float:
    server = ("127.0.0.1", server_port)
    players = []
    for game in range(games):
        players += [Player(server, "g%d" % game, 0), Player(server, "g%d" % game, 1)]
    if gamed:
        pair_in_gamed(players)
    return measure(players, seconds, window)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (a), (b), gamed, interleaved; medians reported")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORTFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        {"echo": serve_twisted_echo, "socketserver": serve_socketserver}[args.serve[0]](
            args.serve[1])
        return
    print("%d games (%d players), window %d, %.0f s per server, %d rounds, %d cores, %s"
          % (args.games, 2 * args.games, args.window, args.seconds, args.rounds,
             os.cpu_count(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))

    def reference(kind):
        def measure_it():
            proc, port = start_reference(kind)
            try:
                return round(run(port, args.games, args.seconds, args.window, False))
            finally:
                proc.kill()
                proc.wait()
        return measure_it

    def gamed():
        tmp = tempfile.mkdtemp(prefix="gamed-bench-blockattack-")
        proc, port = start_gamed(tmp)
        try:
            return round(run(port, args.games, args.seconds, args.window, True))
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    runs = interleaved(args.rounds, [("(a) bare Twisted UDP JSON echo", reference("echo")),
                                     ("(b) socketserver.ThreadingMixIn", reference("socketserver")),
                                     ("(c) gamed", gamed)],
                       report=lambda line: print(line, flush=True))
    echo, threaded, ours = (median(values) for values in runs.values())
    print("medians: (a) %.0f, (b) %.0f, (c) gamed %.0f round trips/s = %.2f of (a), %.1fx (b)"
          % (echo, threaded, ours, ours / echo, ours / threaded))
    print("goals: >= 0.50 of (a): %s; >= 2x (b): %s"
          % ("met" if ours >= 0.5 * echo else "NOT met",
             "met" if ours >= 2 * threaded else "NOT met"))


if __name__ == "__main__":
    main()
