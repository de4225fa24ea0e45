"""The [blockattack] config section."""

from typing import ClassVar

import attrs


@attrs.define
class BlockattackSettings:
    # listener keys (endpoint kind) and numbers that must be above zero, for the config
    LISTENERS: ClassVar[dict] = {"listen": "udp"}
    POSITIVE: ClassVar[frozenset] = frozenset({
        "game_seconds", "max_datagram", "silence_timeout", "power_every", "connect_timeout",
        "max_waiting"})
    #: UDP listener: udp:PORT[:interface=ADDR] (empty disables it)
    listen: str = "udp:5557"
    #: Elo K factor
    k_factor: float = 32.0
    #: game length in seconds
    game_seconds: float = 180.0
    #: largest accepted datagram in bytes
    max_datagram: int = 8192
    #: seconds without a datagram from a player before it loses the game
    silence_timeout: float = 15.0
    #: score points that earn one power
    power_every: int = 500
    #: seconds a connect waits for the opponent's connect
    connect_timeout: float = 60.0
    #: players waiting for their opponent at most (a connect past it gets "busy")
    max_waiting: int = 10000
