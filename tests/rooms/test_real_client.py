"""A replay of upperlevel's Carcassonne browser client against the rooms service.

The frames are the ones its source builds (src/app/channel.ts and src/app/phase/*.ts,
read, not copied): every frame is `JSON.stringify({id: counter, ...packet})`, one counter
for all of them, a `#` in front of control frames; `login` without `border_color`,
`room_join` with the `inviteId` from the URL's hash, `room_start` with
`connectionType: "server_broadcast"`, the ack carrying the server event's `id`, game
frames relayed to the others with `sender` added. Each received frame is checked against
what the client's current screen listens for and the fields it reads: a frame the screen
has no listener for would be lost on the real client, so none may come.
"""

import json

import pytest
import pytest_twisted
from twisted.internet import threads

from gamed.rooms.settings import RoomsSettings

from .test_wire import client_on, listen

SEED = 0.8167474587470232  # Math.random() as JSON.stringify writes it

#: what each screen of the client listens for (`special_` = a `#` frame)
LISTENS = {
    "login": {"login_response", "room_join_response", "room_create_response"},
    "room": {"event_player_joined", "event_player_left", "event_room_start"},
    "game": {"random_seed", "player_draw", "player_place_card", "player_place_card_preview",
             "next_round", "player_pawn_place", "player_pawn_preview",
             "player_pawn_interact", "special_player_left", "special_end_game_ack"},
}


class CarcassonneClient:
    """One browser tab: a socket, the client's frame counter, and its screen."""

    def __init__(self, connection, name):
        self.connection = connection
        self.name = name
        self.packet_id = 0
        self.screen = "login"
        self.my_id = None
        self.players = {}  # id -> PlayerObject, as the room and game screens keep them
        self.offline = set()
        self.form_error = ""

    # -- channel.ts -------------------------------------------------------------------------

    def send(self, packet, special=False):
        raw = json.dumps(dict({"id": self.packet_id}, **packet), separators=(",", ":"),
                         ensure_ascii=False)
        if special:
            raw = "#" + raw
        self.connection.send_text(raw)
        self.packet_id += 1
        return raw

    def receive(self):
        """The next frame as the client dispatches it: (event name, packet, raw text)."""
        raw = self.connection.recv_text()
        special = raw.startswith("#")
        packet = json.loads(raw[1:] if special else raw)
        kind = ("special_" if special else "") + packet["type"]
        assert kind in LISTENS[self.screen], (self.name, self.screen, raw)
        return kind, packet, raw

    def expect(self, kind):
        got, packet, raw = self.receive()
        assert got == kind, (self.name, kind, raw)
        return packet, raw

    # -- loginPhase.ts ----------------------------------------------------------------------

    def log_in(self, username, color, avatar):
        self.send({"type": "login", "details": {"username": username, "color": color,
                                                "avatar": avatar}})
        packet, _ = self.expect("login_response")
        if packet["result"] != "ok":
            self.form_error = packet["result"]
            return False
        self.my_id = packet["playerId"]
        return True

    def create_room(self):
        self.send({"type": "room_create"})
        packet, _ = self.expect("room_create_response")
        assert packet["result"] == "ok", packet
        self.go_to_room(packet["players"])
        return packet["inviteId"]  # written into the URL's hash

    def join_room(self, url_hash):
        self.send({"type": "room_join", "inviteId": url_hash[1:]})
        packet, _ = self.expect("room_join_response")
        if packet["result"] != "ok":
            self.form_error = packet["result"]  # shown under the form; still logged in
            return False
        self.go_to_room(packet["players"])
        return True

    def go_to_room(self, players):
        assert any(p["id"] == self.my_id for p in players), "me not in the room"
        self.players = {p["id"]: p for p in players}
        self.screen = "room"

    def me(self):
        return self.players[self.my_id]

    # -- roomPhase.ts -----------------------------------------------------------------------

    def on_room_event(self):
        kind, packet, _ = self.receive()
        if kind == "event_player_joined":
            player = packet["player"]
            assert isinstance(player["id"], str) and player["username"]
            assert isinstance(player["avatar"], int) and isinstance(player["color"], int)
            self.players[player["id"]] = player
        elif kind == "event_player_left":
            del self.players[packet["player"]]
            if "newHost" in packet:
                self.players[packet["newHost"]]["isHost"] = True
        elif kind == "event_room_start":
            self.send({"type": "event_room_start_ack", "requestId": packet["id"]})
            self.screen = "game"
            self.offline = set()
        return kind, packet

    def start(self):
        assert self.me()["isHost"] and len(self.players) > 1  # its Start button
        self.send({"type": "room_start", "connectionType": "server_broadcast"})

    # -- gamePhase.ts -----------------------------------------------------------------------

    def game_frame(self):
        """A relayed frame: the sender is a player of this game, the frame as sent."""
        kind, packet, raw = self.receive()
        if kind.startswith("special_"):
            return kind, packet, raw
        assert packet["sender"] in self.players and packet["sender"] != self.my_id
        return kind, packet, raw

    def on_player_left(self, packet):
        assert packet["player"] in self.players
        self.offline.add(packet["player"])
        if "newHost" in packet:
            self.players[packet["newHost"]]["isHost"] = True

    def end_game(self):
        self.send({"type": "end_game"}, special=True)
        while True:
            kind, packet, _ = self.receive()
            if kind == "special_end_game_ack":
                self.go_to_room(packet["players"])
                return packet
            assert kind == "special_player_left", kind
            self.on_player_left(packet)


def relayed(raw_sent, sender_id):
    return '{"sender":"%s",%s' % (sender_id, raw_sent[1:])


@pytest.mark.parametrize("transport", ["websocket", "lines"])
@pytest_twisted.ensureDeferred
async def test_three_browsers_play_through_gamed_as_the_real_client(transport):
    rooms, stats, ports = await listen(RoomsSettings())

    def play():
        ann = CarcassonneClient(client_on(ports, transport), "ANN")
        ben = CarcassonneClient(client_on(ports, transport), "BEN")
        cid = CarcassonneClient(client_on(ports, transport), "ann")
        # ANN opens the page without a hash: logs in, creates the room
        assert ann.log_in("ANN", 15022393, 3)
        url_hash = "#" + ann.create_room()
        assert ann.me()["isHost"] is True and ann.packet_id == 2
        # BEN opens the invite link
        assert ben.log_in("BEN", 1984229, 7)
        assert ben.join_room(url_hash)
        assert [p["username"] for p in ben.players.values()] == ["ANN", "BEN"]
        assert ann.on_room_event()[0] == "event_player_joined"
        # a second "ann" opens it: refused by name, and the form says why
        assert cid.log_in("ann", 5, 1)
        assert not cid.join_room(url_hash)
        assert cid.form_error == "name_conflict" and cid.screen == "login"
        # its user types another name and presses Play again, on the same socket
        assert cid.log_in("CID", 5, 1)
        assert cid.join_room(url_hash) and cid.packet_id == 4
        for client in (ann, ben):
            kind, packet = client.on_room_event()
            assert kind == "event_player_joined" and packet["player"]["username"] == "CID"
        # the host starts; every tab acks the event by its id and shows the game
        ann.start()
        for client in (ann, ben, cid):
            assert client.on_room_event()[0] == "event_room_start"
            assert client.screen == "game"
        # the host's game screen sends the seed at once
        seed = ann.send({"type": "random_seed", "seed": SEED})
        for client in (ben, cid):
            kind, packet, raw = client.game_frame()
            assert raw == relayed(seed, ann.my_id) and packet["seed"] == SEED
        # BEN's turn: draw, move the card around, place it, next round
        turn = [ben.send({"type": "player_draw"}),
                ben.send({"type": "player_place_card_preview", "x": 1, "y": 0,
                          "rotation": 0}),
                ben.send({"type": "player_place_card_preview", "x": 1, "y": -1,
                          "rotation": 90}),
                ben.send({"type": "player_place_card", "x": 1, "y": -1, "rotation": 90}),
                ben.send({"type": "player_pawn_place", "side": 2, "pos": {"x": 1, "y": -1}}),
                ben.send({"type": "next_round"})]
        for client in (ann, cid):
            assert [client.game_frame()[2] for _ in turn] == [relayed(t, ben.my_id)
                                                              for t in turn]
        # CID's tab is closed mid-game
        cid.connection.close()
        for client in (ann, ben):
            kind, packet, _ = client.game_frame()
            assert kind == "special_player_left" and packet["player"] == cid.my_id
            assert "newHost" not in packet  # CID was not the host
            client.on_player_left(packet)
        # the game goes on between the two left
        turn = [ann.send({"type": "player_draw"}),
                ann.send({"type": "player_place_card", "x": 0, "y": 1, "rotation": 180}),
                ann.send({"type": "next_round"})]
        assert [ben.game_frame()[2] for _ in turn] == [relayed(t, ann.my_id) for t in turn]
        # the bag is empty: each tab's countdown ends the game, back to the room
        ann_ack = ann.end_game()
        ben_ack = ben.end_game()  # reads ANN's departure from the game first
        for ack in (ann_ack, ben_ack):
            assert {p["id"] for p in ack["players"]} == {ann.my_id, ben.my_id}
        assert ben.offline == {cid.my_id, ann.my_id}
        # the host starts a second game in the same room
        ann.start()
        for client in (ann, ben):
            assert client.on_room_event()[0] == "event_room_start"
        again = ben.send({"type": "random_seed", "seed": 0.25})
        assert ann.game_frame()[2] == relayed(again, ben.my_id)
        for client in (ann, ben):
            client.connection.close()
        return ann, ben, cid

    ann, ben, cid = await threads.deferToThread(play)
    try:
        assert not stats.errors  # no frame of the client's was refused
    finally:
        for port in ports.values():
            await port.stopListening()
