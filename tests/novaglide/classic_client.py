"""What the original Novaglide desktop client puts on the wire, reproduced for the tests.

Its requests are `pickle.dumps(dict)` with `time` a `datetime.datetime`, and `ingame` input
carries `pygame.key.get_pressed()`: a `pygame.key.ScancodeWrapper` (a tuple subclass of
512 bools). pygame is not a dependency of gamed: `scancode_wrapper_registered` makes a
stand-in class that pickles under exactly that name, only while a test runs.
"""

from __future__ import annotations

import contextlib
import datetime
import pickle
import sys
import types

#: SDL scancodes of the client's keys
SCANCODES = {"w": 26, "a": 4, "s": 22, "d": 7, "space": 44, "lshift": 225,
             "right": 79, "left": 80, "down": 81, "up": 82}


@contextlib.contextmanager
def scancode_wrapper_registered():
    """Yield a class that pickles as pygame.key.ScancodeWrapper (a tuple subclass)."""
    module = types.ModuleType("pygame.key")
    wrapper = type("ScancodeWrapper", (tuple,), {"__module__": "pygame.key"})
    module.ScancodeWrapper = wrapper
    package = types.ModuleType("pygame")
    package.key = module
    saved = {name: sys.modules.get(name) for name in ("pygame", "pygame.key")}
    sys.modules["pygame"], sys.modules["pygame.key"] = package, module
    try:
        yield wrapper
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def pressed(wrapper, *keys) -> tuple:
    """pygame.key.get_pressed() with `keys` held."""
    state = [False] * 512
    for key in keys:
        state[SCANCODES[key]] = True
    return wrapper(state)


def request(flag: str, data: list, sender="uknown") -> bytes:
    """One request exactly as the client's `Game.parse_data` + `Network.send` make it."""
    return pickle.dumps({"time": datetime.datetime.now(), "sender": sender, "flag": flag,
                         "data": data})
