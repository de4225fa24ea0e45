"""A rooms client that leaves at any step of its flow is not an error: what the room sends
it afterwards (relayed frames, player_left, host changes) is dropped quietly and nothing
is logged at error level. The leaver sends its request and leaves at once (a close frame
on WebSocket, the socket closed on JSON lines)."""

import json

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads

from gamed.core.testing import ErrorLog
from gamed.rooms.settings import RoomsSettings

from .test_wire import LineClient, WsClient, converse, listen


def until(client, kind):
    while True:
        text = client.recv_text()
        if not text.startswith("#") and json.loads(text).get("type") == kind:
            return json.loads(text)


def flow(ports, make, upto, tag):
    """The leaver L hosts a room with a partner P; L leaves right after sending step `upto`."""
    port = ports["websocket" if make is WsClient else "lines"].getHost().port
    l, p = make(port), LineClient(ports["lines"].getHost().port)
    converse(p, {"id": 0, "type": "login", "details": {"username": "p%s" % tag}},
             "login_response")
    state = {}

    def created(reply):
        state["invite"] = reply["inviteId"]
        converse(p, {"id": 1, "type": "room_join", "inviteId": state["invite"]},
                 "room_join_response")

    def started(event):
        state["event"] = event
        theirs = until(p, "event_room_start")
        p.send_text(json.dumps({"id": 2, "type": "event_room_start_ack",
                                "requestId": theirs["id"]}))

    steps = [
        ({"id": 0, "type": "login", "details": {"username": "l%s" % tag}}, "login_response",
         None),
        ({"id": 1, "type": "room_create"}, "room_create_response", created),
        ({"id": 2, "type": "room_start", "connectionType": "server_broadcast"},
         "event_room_start", started),
        (lambda: {"id": 3, "type": "event_room_start_ack", "requestId": state["event"]["id"]},
         None, None),
        ({"type": "move", "n": 1}, None, None),
    ]
    for index, (message, want, then) in enumerate(steps[:upto + 1]):
        message = message() if callable(message) else message
        if index == upto:
            l.send_text(json.dumps(message))
            l.close()
            break
        if want is None:
            l.send_text(json.dumps(message))
        else:
            reply = converse(l, message, want)
            if then is not None:
                then(reply)
    # the partner carries on: a frame relayed to the room, then it leaves too
    p.send_text(json.dumps({"type": "move", "n": 2}))
    p.send_text(json.dumps({"id": 9, "type": "room_leave"}))
    p.close()
    return len(steps)


@pytest.mark.parametrize("transport", ["websocket", "lines"])
@pytest_twisted.ensureDeferred
async def test_a_client_leaving_at_any_step_logs_no_error(transport):
    rooms, stats, ports = await listen(RoomsSettings())
    make = WsClient if transport == "websocket" else LineClient
    try:
        with ErrorLog() as errors:
            upto, count = 0, 1
            while upto < count:
                count = await threads.deferToThread(flow, ports, make, upto,
                                                    "%s%d" % (transport[0], upto))
                upto += 1
            for _ in range(500):
                if not any(stats.connections.values()):
                    break
                await task.deferLater(reactor, 0.01, lambda: None)
        assert errors.lines() == []
        assert count == 5 and stats.connections_total == 2 * count
        assert not any(stats.connections.values())
    finally:
        for port in ports.values():
            await port.stopListening()
