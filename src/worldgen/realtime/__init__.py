"""Real-time: chat, presence, map pings and world events over WebSockets, across app instances.

``protocol`` defines every message; ``hub`` keeps the rooms of one instance and ``session`` serves
each socket; ``room`` delivers a world's stream to its local sockets; ``fanout`` is the one
pub/sub listener per instance; ``connection`` is a socket's bounded send queue; ``errors`` maps
failures to error codes and close codes. Storage lives in :mod:`worldgen.store.chat` and
:mod:`worldgen.store.presence`. See ``docs/realtime.md``.
"""
