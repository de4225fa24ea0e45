"""Renders the documented default config (etc/gamed.toml) from the settings classes.

Each key's documentation is the `#:` comment above its attribute, so the file and the
code cannot drift apart: tests compare etc/gamed.toml with `render_default_config()`.
"""

from __future__ import annotations

import inspect
import json
import re

import attrs


_ATTRIBUTE = re.compile(r"^\s+(\w+)\s*:")

HEADER = """\
# gamed configuration: every key with its default value.
# Run: twistd -n gamed --config etc/gamed.toml   (command-line options override it;
# see `twistd gamed --help`). Listen values are Twisted endpoint descriptions
# (tcp:PORT:interface=ADDR, ssl:PORT:privateKey=...:certKey=..., systemd:domain=INET:index=N);
# UDP is udp:PORT[:interface=ADDR]; an empty value disables that listener.
# Generated from the settings classes: python -m gamed.core.configdoc > etc/gamed.toml
"""

SECTION_NOTES = {
    "cluster": "several nodes acting as one (docs/cluster.md): set redis_url on every "
               "node, one\n# postgresql:// database for all; empty = this node alone",
    "database": "url: sqlite:///PATH (embedded; a PATH without a leading / is relative to "
                "the working directory,\n# sqlite:////var/lib/gamed/gamed.sqlite3 is absolute; "
                "default ./var/gamed.sqlite3 or $STATE_DIRECTORY/gamed.sqlite3)\n"
                "# or postgresql://USER[:PASSWORD]@HOST:PORT/DB",
}


def _comments(cls) -> dict[str, str]:
    """attribute name -> its '#:' comment lines, for cls and its bases."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not attrs.has(klass):
            continue
        pending: list[str] = []
        for line in inspect.getsource(klass).splitlines():
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
                continue
            match = _ATTRIBUTE.match(line)
            if match and pending:
                found[match.group(1)] = " ".join(pending)
            if stripped:
                pending = []
    return found


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def render_default_config(config_type=None) -> str:
    """The documented defaults of a config class (the daemon's, gamed.games, by default)."""
    if config_type is None:
        from gamed.games import GamedConfig as config_type
    defaults = config_type()
    out = [HEADER]
    for section in attrs.fields(config_type):
        settings = getattr(defaults, section.name)
        out.append("")
        note = SECTION_NOTES.get(section.name)
        if note:
            out.append("# " + note)
        out.append("[%s]" % section.name)
        comments = _comments(type(settings))
        for field in attrs.fields(type(settings)):
            if field.name in comments:
                out.append("# " + comments[field.name])
            out.append("%s = %s" % (field.name, _toml_value(getattr(settings, field.name))))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_default_config(), end="")
