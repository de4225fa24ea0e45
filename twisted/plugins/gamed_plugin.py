"""twistd plugin: `twistd gamed` runs the service built by gamed.tap."""

from twisted.application.service import ServiceMaker

gamed = ServiceMaker(
    "gamed", "gamed.tap", "Multiplayer game servers (novaglide, blockattack, uttt, rooms)",
    "gamed")
