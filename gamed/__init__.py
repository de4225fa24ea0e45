"""gamed: one Twisted daemon hosting four multiplayer game servers on shared persistence."""

__version__ = "0.1.0"
