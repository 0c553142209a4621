"""Every Redis key name worldgen uses, built in one place.

Layout: ``<prefix>:<schema>:...``. Keys that belong to one world carry the hash tag ``{w:<id>}``
so all of a world's keys live in one Redis Cluster slot. Key parts that come from outside
(world ids) are validated before they reach a key name: user text never becomes part of a key.
``docs/redis-schema.md`` lists each key with its type, TTL and owner.
"""

from __future__ import annotations

import re

SCHEMA = 1
"""Bumped when the meaning of a stored value changes; old keys are then simply ignored."""

WORLD_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def valid_world_id(world_id: str) -> bool:
    """True when ``world_id`` has the shape of an id worldgen issues (safe inside a key name)."""
    return WORLD_ID_RE.fullmatch(world_id) is not None


class Keys:
    """Key names under one ``prefix`` (so several deployments can share a server)."""

    def __init__(self, prefix: str = "wg") -> None:
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"key prefix must match {_PREFIX_RE.pattern}, got {prefix!r}")
        self.root = f"{prefix}:{SCHEMA}"

    def _world_tag(self, world_id: str) -> str:
        if not valid_world_id(world_id):
            raise ValueError(f"invalid world id {world_id!r}")
        return f"{self.root}:{{w:{world_id}}}"

    def world(self, world_id: str) -> str:
        """Hash: the world's metadata (a :class:`~worldgen.store.worlds.WorldRecord`)."""
        return f"{self._world_tag(world_id)}:meta"

    def worlds_index(self) -> str:
        """Sorted set: every world id, scored by creation time (seconds)."""
        return f"{self.root}:worlds"

    def tile(self, world_id: str, version: str, z: int, x: int, y: int) -> str:
        """String: PNG bytes of one map tile of one content version."""
        if not _VERSION_RE.fullmatch(version):
            raise ValueError(f"invalid content version {version!r}")
        return f"{self._world_tag(world_id)}:tile:{version}:{int(z)}:{int(x)}:{int(y)}"

    def tile_lru(self) -> str:
        """Sorted set: tile keys scored by last use; trimmed to bound the tile cache's size."""
        return f"{self.root}:tiles:lru"

    def pattern_world(self, world_id: str) -> str:
        """Glob matching every key of one world (for delete and backup scans)."""
        tag = self._world_tag(world_id)
        return tag.replace("{", "\\{").replace("}", "\\}") + ":*"
