"""CPU per message of gamed's stream path, against a bare Twisted echo, same run, no network.

    python bench/permessage.py [--messages 20000] [--rounds 3] [--only gamed|bare]
                               [--wire lines|websocket] [--quiet-wait 30]

What every game pays per request, whatever its rules: the adapter (JSON lines or
WebSocket), the connection's checks (closed, rate limit, idle stamp, counting), the JSON
decode, the handler's dispatch, then a reply of uttt's match_update size encoded and
written (the send-buffer check, the framing). The requests are fed to the protocol on an
in-memory transport, one per read (as a game's client sends them), so only the server's
own CPU is measured, and far less of the host's load than with sockets.

The reference does the least the same work can cost on the same framework: a
`LineReceiver` / autobahn protocol whose handler decodes each request with `json.loads`
and writes `json.dumps` of the same reply. Both run `--rounds` times, interleaved, each
after a wait for a quiet machine; the medians of CPU microseconds per message (getrusage of
this process) and gamed's ratio are printed. For instruction counts, which the host's load
does not change at all, run one side under callgrind and subtract a run of half as many
messages (the start-up cancels out):

    valgrind --tool=callgrind python bench/permessage.py --only gamed --wire lines \
        --rounds 1 --quiet-wait 0 --messages 4000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from support import interleaved, median  # noqa: E402 (bench/ on sys.path)

from twisted.internet import task  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

#: a reply of uttt's match_update size (~200 bytes)
REPLY = {"type": "match_update", "id": 1, "board": ["." * 9] * 9, "next": [4, 4],
         "players": ["alice", "bob"], "moves": 12}
HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class Transport(StringTransport):
    def unregisterProducer(self):
        self.producer = None


def requests(count: int, wire: str) -> list:
    texts = [b'{"type":"move","id":%d,"board":3,"cell":5}' % n for n in range(count)]
    if wire == "lines":
        return [text + b"\n" for text in texts]
    # masked text frames (a zero mask: the server unmasks all the same)
    return [bytes((0x81, 0x80 | len(text))) + b"\0\0\0\0" + text for text in texts]


def gamed_protocol(wire: str):
    from gamed.core.channel import ConnectionHandler
    from gamed.core.lines import JsonLinesFactory
    from gamed.core.metrics import Metrics
    from gamed.core.settings import StreamLimits
    from gamed.core.transport import StreamEndpoint
    from gamed.core.websocket import websocket_factory

    class Reply(ConnectionHandler):
        def message_received(self, message):
            self.channel.send(dict(REPLY, id=message.get("id")))

    endpoint = StreamEndpoint("bench", "lines" if wire == "lines" else "websocket", Reply,
                              StreamLimits(rate=1e9, burst=10 ** 9, ping_interval=0),
                              task.Clock(), Metrics().service("bench"))
    factory = JsonLinesFactory(endpoint) if wire == "lines" else websocket_factory(endpoint)
    return factory.buildProtocol(None)


def bare_protocol(wire: str):
    if wire == "lines":
        from twisted.protocols.basic import LineReceiver

        class BareLines(LineReceiver):
            delimiter = b"\n"

            def lineReceived(self, line):
                message = json.loads(line)
                self.sendLine(json.dumps(dict(REPLY, id=message.get("id"))).encode())

        return BareLines()
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

    class BareWebSocket(WebSocketServerProtocol):
        def onMessage(self, payload, isBinary):
            message = json.loads(payload)
            self.sendMessage(json.dumps(dict(REPLY, id=message.get("id"))).encode())

    factory = WebSocketServerFactory()
    factory.protocol = BareWebSocket
    return factory.buildProtocol(None)


def measure(make, wire: str, count: int) -> float:
    """CPU microseconds per request through a fresh protocol of `make(wire)`."""
    proto = make(wire)
    transport = Transport()
    proto.makeConnection(transport)
    if wire == "websocket":
        proto.dataReceived(HANDSHAKE)
    transport.clear()
    reads = requests(count, wire)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = usage.ru_utime + usage.ru_stime
    for data in reads:
        proto.dataReceived(data)
        if transport.io.tell() > 1 << 20:
            transport.clear()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = usage.ru_utime + usage.ru_stime - start
    if transport.io.tell() == 0 and count:
        raise SystemExit("%s %s answered nothing" % (make.__name__, wire))
    return round(spent / count * 1e6, 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("gamed", "bare"))
    parser.add_argument("--wire", choices=("lines", "websocket"), help="only this one")
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="at most this many seconds of waiting for a quiet machine per run")
    args = parser.parse_args()
    makers = {"bare": bare_protocol, "gamed": gamed_protocol}
    if args.only:
        makers = {args.only: makers[args.only]}
    print("permessage: %d requests per run, %d rounds (%d CPUs); CPU us per message"
          % (args.messages, args.rounds, os.cpu_count()))
    for wire in [args.wire] if args.wire else ["lines", "websocket"]:
        contenders = [(name, (lambda make=make: measure(make, wire, args.messages)))
                      for name, make in makers.items()]
        results = interleaved(args.rounds, contenders, quiet={"max_wait": args.quiet_wait},
                              report=lambda line, wire=wire: print(wire, line, flush=True))
        medians = {name: median(values) for name, values in results.items()}
        line = "%s medians: %s" % (wire, ", ".join("%s %.2f us" % item
                                                  for item in medians.items()))
        if len(medians) == 2:
            line += "; gamed/bare %.2f" % (medians["gamed"] / medians["bare"])
        print(line, flush=True)


if __name__ == "__main__":
    main()
