"""Backup archives: everything worldgen cannot recompute, as one versioned file.

An archive is gzip-compressed JSON Lines, never pickle::

    {"format": "worldgen-backup", "version": 1, "created": "2026-11-27T23:00:00Z",
     "generator": "worldgen 0.1.0", "key_prefix": "wg",
     "sections": {"worlds": 2, "users": 1, "members": 1, "chat": 3}}
    {"section": "worlds", "record": {"id": "...", "name": "...", "seed": 7, ...}}
    {"section": "users", "record": {"id": "...", "username": "Ada", "password_hash": "$argon2id$…"}}
    {"section": "members", "record": {"world": "...", "members": [...], "invites": [...]}}
    {"section": "chat", "record": {"world": "...", "id": "1764284400000-0", "entry": {...}}}

The first line is the manifest; every other line is one record of a section named in the
manifest, sections in manifest order (a subsequence of :data:`SECTIONS`), and each section holds
exactly the count the manifest gives. Each record is validated by its section's pydantic model:

- ``worlds``: :class:`~worldgen.store.worlds.WorldRecord`, ids unique.
- ``users``: :class:`ArchivedUser` (a :class:`~worldgen.store.users.UserRecord` whose password
  hash must be an argon2 PHC string: an archive never holds a password), ids unique, usernames
  unique case-insensitively (:func:`~worldgen.store.users.normalize_username`).
- ``members``: :class:`WorldAccess`, at most one per world: the world's members (user id, role,
  joining time) and its pending invites (only the digest of each invite's secret, as stored).
  Its world must be in ``worlds`` and each member in ``users``.
- ``chat``: :class:`ChatEntry`, one per stream entry: the world (in ``worlds``), the stream id
  (``<ms>-<seq>``, above ``0-0``) and the validated chat message or ping. A world's entries are
  contiguous and strictly ascending, so a restore re-adds them with the same ids, in order.
- ``edits``: :class:`~worldgen.store.edits.EditEntry`, per world with edits or markers: its
  ``state`` (content version, marker counter, undo/redo stacks) first, then its operations in
  id order 1, 2, ... (each with its diff), its overlay blocks and its markers (binary values as
  base64). Its world must be in ``worlds``. A restore replaces each archived world's edits.

Never archived: map tiles (a pure function of the world record), sessions (a restore signs
everyone out), presence, rate-limit counters and chat de-duplication keys (all short-lived).

Compatibility: new sections are added without a version bump, and a reader refuses a section it
does not know (the archive was made by a newer worldgen). ``version`` changes only when the shape
of an existing section's records changes incompatibly; a reader refuses a version above its own.
A section absent from the manifest was not archived (a worlds-only archive of an older worldgen):
a restore then leaves that kind of data alone.

Invariants: :func:`read_archive` validates the whole file (records, counts, order, references)
before returning, so a restore writes nothing from a corrupt, truncated, foreign or newer
archive; :func:`write_archive` replaces its output atomically (a failed backup never leaves a
half-written file behind) and reads its output back with the same checks before renaming it, so
a backup it accepts is one :func:`read_archive` accepts. Chat, the one section that can be large,
is never held in memory as objects: :class:`ChatLog` re-reads it from the archive's compressed
bytes (or a spool file while backing up).

Modules, one per section of the job: :mod:`.records` (the pydantic model of each section's
records, :class:`Archive`, the reports), :mod:`.fileformat` (the file: manifest, lines, checks),
:mod:`.dump` (Redis → archive) and :mod:`.load` (archive → Redis). Member and invite values are
encoded by :mod:`worldgen.store.members` and accounts by :meth:`UserRecord.to_hash
<worldgen.store.users.UserRecord.to_hash>`, the same code the app writes with.
"""

from worldgen.store.backup.dump import dump
from worldgen.store.backup.fileformat import (
    FORMAT,
    MAX_LINE_BYTES,
    SECTIONS,
    VERSION,
    read_archive,
    write_archive,
)
from worldgen.store.backup.load import CHAT_MAXLEN_DEFAULT, load
from worldgen.store.backup.records import (
    ACCESS_INVITES_MAX,
    ACCESS_MEMBERS_MAX,
    ARGON2_PHC_PATTERN,
    Archive,
    ArchivedUser,
    BackupError,
    ChatEntry,
    ChatLog,
    DumpReport,
    Manifest,
    RestoreReport,
    WorldAccess,
    utc_now,
)

__all__ = [
    "ACCESS_INVITES_MAX",
    "ACCESS_MEMBERS_MAX",
    "ARGON2_PHC_PATTERN",
    "CHAT_MAXLEN_DEFAULT",
    "FORMAT",
    "MAX_LINE_BYTES",
    "SECTIONS",
    "VERSION",
    "Archive",
    "ArchivedUser",
    "BackupError",
    "ChatEntry",
    "ChatLog",
    "DumpReport",
    "Manifest",
    "RestoreReport",
    "WorldAccess",
    "dump",
    "load",
    "read_archive",
    "utc_now",
    "write_archive",
]
