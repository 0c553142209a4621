"""Every Redis key name worldgen uses, built in one place.

Layout: ``<prefix>:<schema>:...``. Keys that belong to one world carry the hash tag ``{w:<id>}``
so all of a world's keys live in one Redis Cluster slot. Key parts that come from outside
(world ids) are validated before they reach a key name: user text never becomes part of a key.
``docs/redis-schema.md`` lists each key with its type, TTL and owner.
"""

from __future__ import annotations

import hashlib
import re

SCHEMA = 1
"""Bumped when the meaning of a stored value changes; old keys are then simply ignored."""

WORLD_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Shape of client message ids and presence session ids that become part of a key name."""
USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_BUCKET_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def valid_world_id(world_id: str) -> bool:
    """True when ``world_id`` has the shape of an id worldgen issues (safe inside a key name)."""
    return WORLD_ID_RE.fullmatch(world_id) is not None


def valid_user_id(user_id: str) -> bool:
    """True when ``user_id`` has the shape of a user id worldgen issues (safe inside a key)."""
    return USER_ID_RE.fullmatch(user_id) is not None


def digest(text: str) -> str:
    """SHA-256 hex of ``text``: how outside text (usernames, addresses, tokens) enters a key name.

    A digest has a fixed shape whatever the input, so no user text, separator or hash-tag brace
    ever reaches Redis as part of a key, and a key listing reveals no name or address.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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

    def tile_lease(self, world_id: str, version: str, z: int, x: int, y: int) -> str:
        """String with TTL: the token of the instance computing this tile (single flight
        across instances; the others wait for the cached tile)."""
        return self.tile(world_id, version, z, x, y).replace(":tile:", ":tile-lease:", 1)

    def tile_lru(self) -> str:
        """Sorted set: tile keys scored by last use; trimmed to bound the tile cache's size."""
        return f"{self.root}:tiles:lru"

    def pattern_world(self, world_id: str) -> str:
        """Glob matching every key of one world (for delete and backup scans)."""
        tag = self._world_tag(world_id)
        return tag.replace("{", "\\{").replace("}", "\\}") + ":*"

    # --- accounts, sessions, membership, rate limits (issue 6) ---------------------------------

    def _user_tag(self, user_id: str) -> str:
        if not valid_user_id(user_id):
            raise ValueError(f"invalid user id {user_id!r}")
        return f"{self.root}:{{u:{user_id}}}"

    def user(self, user_id: str) -> str:
        """Hash: one account (:class:`~worldgen.store.users.UserRecord`, password hash included)."""
        return f"{self._user_tag(user_id)}:meta"

    def user_sessions(self, user_id: str) -> str:
        """Set: digests of the user's sessions (to end them all); members may have expired."""
        return f"{self._user_tag(user_id)}:sessions"

    def user_worlds(self, user_id: str) -> str:
        """Sorted set: ids of worlds the user is a member of, scored by joining time (advisory:
        the world's member hash is the truth, this index only finds candidates)."""
        return f"{self._user_tag(user_id)}:worlds"

    def username(self, normalized: str) -> str:
        """String: the user id owning a (normalised) username; the name enters only as a digest."""
        return f"{self.root}:username:{digest(normalized)}"

    def session(self, session_digest: str) -> str:
        """Hash with TTL: one session, keyed by the SHA-256 of its token (never the token)."""
        if not _DIGEST_RE.fullmatch(session_digest):
            raise ValueError("invalid session digest")
        return f"{self.root}:session:{session_digest}"

    def members(self, world_id: str) -> str:
        """Hash: user id → membership JSON (role, joining time) of one world."""
        return f"{self._world_tag(world_id)}:members"

    def invites(self, world_id: str) -> str:
        """Hash: invite id → invite JSON (role, expiry, token digest) of one world."""
        return f"{self._world_tag(world_id)}:invites"

    def invite_uses(self, world_id: str) -> str:
        """Hash: invite id → times the invite was accepted."""
        return f"{self._world_tag(world_id)}:invite-uses"

    def rate(self, bucket: str, subject: str) -> str:
        """String with TTL: a rate-limit counter; ``subject`` (address, username) as a digest."""
        if not _BUCKET_RE.fullmatch(bucket):
            raise ValueError(f"invalid rate-limit bucket {bucket!r}")
        return f"{self.root}:rate:{bucket}:{digest(subject)}"

    def security_events(self) -> str:
        """Pub/sub channel: ``session-revoked`` and ``access-changed`` events for every instance."""
        return f"{self.root}:events:security"

    def chat(self, world_id: str) -> str:
        """Stream: the world's chat and map pings, trimmed with ``MAXLEN ~`` (owner: realtime)."""
        return f"{self._world_tag(world_id)}:chat"

    def chat_dedup(self, world_id: str, user_id: str, client_id: str) -> str:
        """String with TTL: stream id of the message one user's client id was stored as
        (retries). Keyed by (user, client id): reusing another user's id stores a new message."""
        if not _TOKEN_RE.fullmatch(client_id):
            raise ValueError(f"invalid client message id {client_id!r}")
        if not _TOKEN_RE.fullmatch(user_id):
            raise ValueError(f"invalid author id {user_id!r}")
        return f"{self._world_tag(world_id)}:chat:dedup:{user_id}:{client_id}"

    def presence(self, world_id: str) -> str:
        """Sorted set with TTL: connection session ids scored by last heartbeat (server time)."""
        return f"{self._world_tag(world_id)}:presence"

    def presence_users(self, world_id: str) -> str:
        """Hash with TTL: session id -> JSON of the user behind it (for "who is here")."""
        return f"{self._world_tag(world_id)}:presence:users"

    def world_channel(self, world_id: str) -> str:
        """Pub/sub channel: wake-ups and ephemeral events of one world's room (not a key)."""
        return f"{self._world_tag(world_id)}:events"

    def world_changes(self) -> str:
        """Pub/sub channel on which every write of a world record is announced (its id)."""
        return f"{self.root}:events:worlds"

    def realtime_control(self) -> str:
        """Pub/sub channel every app instance listens on (keeps the listener subscribed)."""
        return f"{self.root}:realtime"

    # --- edits and markers (issue 14; store/edits.py) -----------------------------------------

    def edits(self, world_id: str, part: str) -> str:
        """One of a world's edit keys (see ``docs/redis-schema.md``, "Edits"): ``log`` (list of
        operation JSON, in order), ``diffs`` (hash: op id → diff bytes), ``blocks`` (hash:
        ``bi:bj`` → overlay block bytes), ``bver`` (hash: ``bi:bj`` → last op id that changed
        the block), ``bverz`` (hash: ``z:x:y`` of a far-zoom tile → last op id that changed its
        cells), ``version`` (string: the content version, the last op id), ``lock``
        (string with TTL: the edit lock's token), ``markers`` (hash: marker id → JSON),
        ``marker-seq`` (string: last marker id)."""
        if part not in _EDIT_PARTS:
            raise ValueError(f"unknown edit key part {part!r}")
        return f"{self._world_tag(world_id)}:edits:{part}"

    def edit_stack(self, world_id: str, user_id: str, which: str) -> str:
        """List: a user's ``undo`` or ``redo`` stack of operation ids in one world."""
        if which not in ("undo", "redo"):
            raise ValueError(f"unknown stack {which!r}")
        if not valid_user_id(user_id):
            raise ValueError(f"invalid user id {user_id!r}")
        return f"{self._world_tag(world_id)}:edits:{which}:{user_id}"

    # --- background jobs (issue 15; store/jobs.py, worldgen.jobs) -----------------------------

    def job(self, world_id: str, token: str, part: str = "meta") -> str:
        """One of a job's keys, under its world's hash tag: ``meta`` (hash: the job record,
        expires after the result), ``png`` (string with TTL: the finished result), ``partial``
        (string with TTL: the result while it is written, renamed to ``png`` when complete)."""
        if part not in _JOB_PARTS:
            raise ValueError(f"unknown job key part {part!r}")
        if not _JOB_TOKEN_RE.fullmatch(token):
            raise ValueError(f"invalid job token {token!r}")
        return f"{self._world_tag(world_id)}:job:{token}:{part}"

    def user_jobs(self, user_id: str) -> str:
        """Sorted set: the user's queued or running job ids, scored by the time after which an
        entry no longer counts (a lost job frees its slot)."""
        return f"{self._user_tag(user_id)}:jobs"

    def broker_namespace(self) -> str:
        """Prefix of the job queue's own keys (Dramatiq's Redis broker: queues, acks, heartbeats;
        not hash-tagged, see ``docs/redis-schema.md``)."""
        return f"{self.root}:dramatiq"

    # --- uploaded models (issue 15; store/models.py) --------------------------------------------

    def model(self, digest: str, part: str) -> str:
        """One of an uploaded model's keys, under the hash tag ``{m:<sha>}``: ``meta`` (hash: the
        :class:`~worldgen.store.models.ModelRecord`), ``data`` (string: the stored bytes),
        ``preview`` (string: the preview PNG), ``library`` (hash: cache file name → ``.npz`` bytes
        of the built patch library, calibration and summary), ``worlds`` (set: ids of the worlds
        over the model)."""
        if part not in _MODEL_PARTS:
            raise ValueError(f"unknown model key part {part!r}")
        if not _DIGEST_RE.fullmatch(digest):
            raise ValueError(f"invalid model digest {digest!r}")
        return f"{self.root}:{{m:{digest}}}:{part}"

    def user_models(self, user_id: str) -> str:
        """Sorted set: ids of the user's models, scored by upload time."""
        return f"{self._user_tag(user_id)}:models"

    def model_bytes(self, user_id: str) -> str:
        """String: bytes the user's models take (the quota counter)."""
        return f"{self._user_tag(user_id)}:model-bytes"

    def public_models(self) -> str:
        """Sorted set: ids of shared models, scored by upload time."""
        return f"{self.root}:models:public"


_MODEL_PARTS = frozenset({"meta", "data", "preview", "library", "worlds"})
_JOB_PARTS = frozenset({"meta", "png", "partial"})
_JOB_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")

_EDIT_PARTS = frozenset(
    {"log", "diffs", "blocks", "bver", "bverz", "version", "lock", "markers", "marker-seq"}
)
