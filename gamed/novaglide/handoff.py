"""novaglide with `[server] workers`: a player whose match runs on another worker is
handed over there (its TCP connection itself, gamed/workers/handoff.py), so a match's
states go to both players from the process that runs it instead of through Redis at
60 Hz.

When the running worker tells the player's worker `novaglide.matched`, the player's
worker stops serving the connection (nothing more is written to it; its presence here
ends as at a disconnection, without telling the match the player went) and passes the
socket with the account and the bytes of an unfinished line. The running worker adopts
it as a logged-in `NovaConnection` of that account: the ordinary login path puts it back
in its seat of the match (the presence follows the account there). A classic-wire
connection (lockstep, pickled) or one with output still queued stays remote, as between
machines.
"""

from __future__ import annotations

from twisted.logger import Logger

log = Logger(namespace="gamed.novaglide")

KIND = "novaglide"


class NovaglideHandoff:
    def __init__(self, game, handoff, endpoints: dict):
        self.game = game
        self.handoff = handoff
        self.endpoints = endpoints
        handoff.register(KIND, self.taken)

    def give(self, account_id: int, node: str) -> bool:
        """Hand the account's connection here to worker `node`, which runs its match;
        False when it stays remote."""
        connection = self.game.online.get(account_id)
        channel = getattr(connection, "channel", None)
        lines = self.handoff.lines_connection(channel, node)
        if lines is None:
            return False
        tcp, proto = lines
        account = connection.account
        nova = self.game.cluster
        nova.remote_match.pop(account_id, None)  # no "gone" for the match when it closes
        nova.forwarded.pop(account_id, None)
        channel.closed = True  # nothing more is written here: the socket is leaving
        header = {"account": {"id": account.id, "name": account.name,
                              "name_key": account.name_key, "is_guest": account.is_guest,
                              "banned": account.banned},
                  "rest": proto._buffer.decode("latin-1")}
        d = self.handoff.give(node, tcp, KIND, header)

        def given(_):
            log.info("novaglide: {name} handed over to worker {node}", name=account.name,
                     node=node)

        def failed(reason):
            log.warn("novaglide: handing {name} over to {node} failed ({error}); it plays "
                     "from here", name=account.name, node=node, error=reason.getErrorMessage())
            channel.closed = False
            tcp.startReading()
            nova.remote_match[account_id] = node

        d.addCallbacks(given, failed)
        return True

    def taken(self, adopt, header: dict) -> None:
        from gamed.core.lines import JsonLinesFactory
        from gamed.store.accounts import Account

        proto = adopt(JsonLinesFactory(self.endpoints[(KIND, "lines")]))
        connection = proto.connection
        if connection is None:  # refused (server full): the client was told
            return
        handler = connection.handler
        handler.account = Account(**header["account"])
        self.game.logged_in(handler)
        if header["rest"]:
            proto.dataReceived(header["rest"].encode("latin-1"))
