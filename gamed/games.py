"""The games this daemon serves: each one's config section and service module.

The service tree (`gamed.tap`) builds every game from this table, and the config class
is made here from the core's sections and the games' (`gamed.core.config` knows no game).
"""

from __future__ import annotations

from typing import Any

from gamed.blockattack.settings import BlockattackSettings
from gamed.core import config as _config
from gamed.novaglide.settings import NovaglideSettings
from gamed.rooms.settings import RoomsSettings
from gamed.uttt.settings import UtttSettings

#: game name -> its [section] settings class; the service is gamed.<name>.service
SECTIONS: dict = {
    "novaglide": NovaglideSettings,
    "blockattack": BlockattackSettings,
    "uttt": UtttSettings,
    "rooms": RoomsSettings,
}
GAMES = tuple(SECTIONS)

#: the daemon's whole config: the core's sections, then one per game
GamedConfig = _config.config_class(SECTIONS)
#: (section, key) of every listener: the --SECTION-KEY command-line overrides
LISTENER_KEYS = _config.listener_keys(GamedConfig)


def load_config(path: str | None) -> Any:
    """The daemon's config from a file (None: the defaults), validated."""
    return _config.load_config(path, GamedConfig)


def structure_config(data: dict) -> Any:
    return _config.structure_config(data, GamedConfig)
