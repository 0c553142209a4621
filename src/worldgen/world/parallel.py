"""World generation in a long-lived pool of worker processes, byte-identical to serial.

A :class:`WorkerPool` is created once (the CLI makes one per command; a long-running service
can keep one for its lifetime — the web app still uses its own pool in ``web/generation.py``)
and reused for any number of worlds, regions, block batches and map tiles:

* every task names its world by a config (:class:`~worldgen.world.blocks.WorldConfig` or
  :class:`~worldgen.world.spec.WorldSpec`, both frozen, hashable and picklable); a worker builds
  the world on first use and keeps the last ``max_worlds`` in an LRU, together with their block
  caches, so a later task on the same world pays neither the rebuild nor the blocks it already
  computed;
* workers import the engine and load the JIT kernels once, when they start (the initializer);
* results travel back as int32 arrays (a stacked batch of blocks, or a window of cells) or PNG
  bytes, never as pickled worlds or Python lists.

:meth:`WorkerPool.region` splits a window into bands of whole top-layer block rows (see
:func:`plan_pieces`), about eight per worker (``PIECES_PER_WORKER``) so that uneven bands balance
out. Neighbouring bands read the same lower-layer blocks along their common edge (one layer-1 row
for 2 layers); those are computed first, once, as block batches (:func:`shared_blocks`), and handed
to both bands, so the pool computes exactly the blocks a serial run does (tested). Blocks are pure
functions of ``(world, layer, bi, bj)``, so neither the split, nor the worker that computes a
piece, nor the order in which pieces finish can change a byte of the result (tested against the
serial :meth:`World.region`).

Worker processes are started with ``spawn``: a program that creates a pool must guard its entry
point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import math
import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from worldgen.engine.tileset import load_tileset
from worldgen.errors import InputError
from worldgen.world.blocks import BlockKey, World, WorldConfig
from worldgen.world.patches import load_or_build
from worldgen.world.spec import WorldSpec, build_world

I32Array = npt.NDArray[np.int32]
Config = WorldConfig | WorldSpec
"""How a worker rebuilds a world: hashable, picklable, equal for equal content."""
Window = tuple[int, int, int, int]
"""``(x, y, width, height)`` in cells."""
T = TypeVar("T")

MAX_WORKERS = 64
PIECES_PER_WORKER = 8
"""A region is cut into about this many pieces per worker, so that uneven pieces balance out."""
MAX_PIECE_BLOCKS = 4096
"""At most this many top-layer blocks per piece: a piece's blocks, and the shared ones it is
given, then fit in a worker's block cache (16384) with every layer below, up to 3 layers."""


def world_from_config(config: Config) -> World:
    """Rebuild the world ``config`` describes (in any process: the same config, the same bytes)."""
    if isinstance(config, WorldSpec):
        return build_world(config, allow_files=True)
    tileset = load_tileset(config.tileset_path, config.subset)
    directory = Path(config.cache_dir) if config.cache_dir else None
    lib = load_or_build(tileset, config.S, config.V, directory)
    return World(
        tileset, config.seed, S=config.S, V=config.V, layers=config.layers, library=lib,
        config=config,
    )  # fmt: skip


def _offset(S: int, layer: int) -> int:
    """Block offset of ``layer`` (``World.offset``): S/2 for odd layers, 0 for even ones."""
    return S // 2 if layer % 2 else 0


def _block_span(start: int, length: int, S: int, offset: int) -> tuple[int, int]:
    """First and last block index whose span ``[k*S + offset, (k+1)*S + offset)`` meets the run."""
    return (start - offset) // S, (start + length - 1 - offset) // S


def _split(start: int, length: int, S: int, offset: int, parts: int) -> list[tuple[int, int]]:
    """``[start, start + length)`` cut into at most ``parts`` runs of whole block spans.

    Inner cut points lie on block boundaries ``k * S + offset``; runs are as equal as possible
    (in blocks) and listed in order; they tile the input exactly.
    """
    first, last = _block_span(start, length, S, offset)
    blocks = last - first + 1
    parts = max(1, min(parts, blocks))
    out: list[tuple[int, int]] = []
    lo = start
    for k in range(1, parts + 1):
        hi = start + length if k == parts else (first + (blocks * k) // parts) * S + offset
        out.append((lo, hi - lo))
        lo = hi
    return out


def plan_pieces(window: Window, S: int, offset: int, workers: int) -> list[Window]:
    """The pieces :meth:`WorkerPool.region` computes, row-major; they tile ``window`` exactly.

    Bands of whole top-layer block rows (boundaries at ``k * S + offset``): about
    ``PIECES_PER_WORKER * workers`` of them, more when a band would exceed ``MAX_PIECE_BLOCKS``
    blocks. A window with fewer block rows than workers is also cut into columns.
    """
    x, y, w, h = window
    r0, r1 = _block_span(y, h, S, offset)
    c0, c1 = _block_span(x, w, S, offset)
    rows, cols = r1 - r0 + 1, c1 - c0 + 1
    bands = max(PIECES_PER_WORKER * workers, math.ceil(rows * cols / MAX_PIECE_BLOCKS))
    bands = max(1, min(bands, rows))
    columns = 1 if bands >= workers else min(cols, math.ceil(workers / bands))
    return [
        (px, py, pw, ph)
        for py, ph in _split(y, h, S, offset, bands)
        for px, pw in _split(x, w, S, offset, columns)
    ]


def _cone(window: Window, S: int, layers: int) -> dict[int, tuple[int, int, int, int]]:
    """Block ranges ``(c0, c1, r0, r1)`` (inclusive) of every refinement layer that computing
    ``window``'s top layer reads, from ``World.dependencies``: a layer-L block reads layer L-1
    indices ``b + d`` and ``b + d + 1``, ``d = 0`` for odd L and -1 for even L."""
    x, y, w, h = window
    c0, c1 = _block_span(x, w, S, _offset(S, layers))
    r0, r1 = _block_span(y, h, S, _offset(S, layers))
    out = {layers: (c0, c1, r0, r1)}
    for layer in range(layers, 1, -1):
        d = 0 if layer % 2 else -1
        c0, c1, r0, r1 = c0 + d, c1 + d + 1, r0 + d, r1 + d + 1
        out[layer - 1] = (c0, c1, r0, r1)
    return out


def shared_blocks(
    pieces: Sequence[Window], S: int, layers: int
) -> tuple[list[list[BlockKey]], list[list[int]]]:
    """The blocks that two or more pieces would both compute, and who needs them.

    Returns ``(groups, needs)``: ``groups[g]`` lists the shared block keys (lower layers first,
    then row-major) that exactly the same set of pieces reads; ``needs[p]`` the groups piece p
    reads. :meth:`WorkerPool.region` computes each group once, before the pieces that need it, so
    no block is computed twice. Only layers below the top are shared (top-layer blocks of
    different pieces are distinct, and layer 0 is a look-up). One exception: with 3 layers and
    bands one block row thin, a group's layer-2 blocks can read layer-1 blocks of another group,
    which its task then computes again (same bytes; only small windows get such thin bands).
    """
    cones = [_cone(p, S, layers) for p in pieces]
    readers: dict[BlockKey, list[int]] = {}
    for layer in range(1, layers):
        # rows and columns that two or more pieces reach; shared keys lie on them
        row_hits: dict[int, int] = {}
        col_hits: dict[int, int] = {}
        for cone in cones:
            c0, c1, r0, r1 = cone[layer]
            for r in range(r0, r1 + 1):
                row_hits[r] = row_hits.get(r, 0) + 1
            for c in range(c0, c1 + 1):
                col_hits[c] = col_hits.get(c, 0) + 1
        for index, cone in enumerate(cones):
            c0, c1, r0, r1 = cone[layer]
            rows = range(r0, r1 + 1)
            cols = range(c0, c1 + 1)
            shared_rows = [r for r in rows if row_hits[r] > 1]
            shared_cols = [c for c in cols if col_hits[c] > 1]
            keys = {(layer, c, r) for r in shared_rows for c in cols}
            keys.update((layer, c, r) for c in shared_cols for r in rows)
            for key in keys:
                readers.setdefault(key, []).append(index)
    by_readers: dict[tuple[int, ...], list[BlockKey]] = {}
    for key, who in readers.items():
        if len(who) > 1:
            by_readers.setdefault(tuple(who), []).append(key)
    groups: list[list[BlockKey]] = []
    needs: list[list[int]] = [[] for _ in pieces]
    for pieces_reading, members in sorted(by_readers.items()):
        for index in pieces_reading:
            needs[index].append(len(groups))
        groups.append(sorted(members, key=lambda k: (k[0], k[2], k[1])))
    return groups, needs


# ---------------------------------------------------------------------------------- worker side
_WORLDS: OrderedDict[Config, World] = OrderedDict()
_MAX_WORLDS = 4


def _init_worker(max_worlds: int) -> None:
    """Runs once in each new worker: remember the world cache size, load the JIT kernels."""
    global _MAX_WORLDS
    _MAX_WORLDS = max_worlds
    from worldgen.engine.solver import warm_up

    warm_up()


def _world(config: Config) -> World:
    """This worker's world for ``config``: built on first use, kept in an LRU of worlds."""
    world = _WORLDS.get(config)
    if world is None:
        world = world_from_config(config)
        _WORLDS[config] = world
        while len(_WORLDS) > _MAX_WORLDS:
            _WORLDS.popitem(last=False)
    else:
        _WORLDS.move_to_end(config)
    return world


def _blocks_task(config: Config, keys: list[BlockKey]) -> I32Array:
    world = _world(config)
    out = np.empty((len(keys), world.S, world.S), dtype=np.int32)
    for n, key in enumerate(keys):
        out[n] = world.block(*key)
    return out


def _window_task(config: Config, window: Window) -> I32Array:
    return _world(config).region(*window)


def _piece_task(
    config: Config, window: Window, keys: list[BlockKey], blocks: I32Array | None
) -> I32Array:
    """A region piece, given the shared blocks another task computed (identical by purity)."""
    world = _world(config)
    if blocks is not None:
        for key, grid in zip(keys, blocks, strict=True):
            world.put_block(key, grid)
    return world.region(*window)


def _tile_task(config: Config, z: int, x: int, y: int) -> bytes:
    from worldgen.world.render import render_tile

    return render_tile(_world(config), z, x, y)


def _ping(pause: float) -> int:
    """The worker's pid, after ``pause`` seconds (so that one worker cannot answer every ping)."""
    import os
    import time

    time.sleep(pause)
    return os.getpid()


# ---------------------------------------------------------------------------------- parent side
def _config_of(world: World | Config) -> Config:
    if isinstance(world, World):
        if world.config is None:
            raise InputError(
                "parallel generation needs a world built from a WorldConfig or WorldSpec"
            )
        return world.config
    return world


class WorkerPool:
    """A long-lived pool of ``workers`` spawn processes that generate blocks, windows and tiles.

    Create it once and reuse it; it is safe to submit from several threads. Tasks name their
    world by its config (or a :class:`World` that carries one), so one pool serves any number of
    worlds; each worker keeps its last ``max_worlds`` worlds (and their block caches). A worker
    that dies breaks the executor; the next submission starts a fresh one (futures already
    submitted fail with ``BrokenProcessPool``). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, workers: int, *, max_worlds: int = 4) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise InputError(f"workers must be in 1..{MAX_WORKERS}, got {workers}")
        if max_worlds < 1:
            raise InputError(f"max_worlds must be at least 1, got {max_worlds}")
        self.workers = workers
        self.max_worlds = max_worlds
        self._lock = threading.Lock()
        self._closed = False
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.max_worlds,),
        )

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            try:
                return self._executor.submit(fn, *args)
            except BrokenProcessPool:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
                return self._executor.submit(fn, *args)

    # -------------------------------------------------------------------------------- tasks
    def start(self) -> list[int]:
        """Start every worker now and wait until they have loaded the kernels, so that the first
        real task does not pay the process start-up. Optional; returns the process ids that
        answered, sorted (normally every worker's; the rounds of pings are bounded)."""
        seen: set[int] = set()
        for _ in range(20):
            futures = [self._submit(_ping, 0.05) for _ in range(self.workers)]
            seen.update(f.result() for f in futures)
            if len(seen) >= self.workers:
                break
        return sorted(seen)

    def submit_blocks(self, world: World | Config, keys: Sequence[BlockKey]) -> Future[I32Array]:
        """Blocks ``keys`` (``(layer, bi, bj)``, layer >= 1) of the world, computed in a worker:
        a future of their ``(len(keys), S, S)`` int32 variant ids, in the order of ``keys``."""
        config = _config_of(world)
        clean = [(int(k[0]), int(k[1]), int(k[2])) for k in keys]
        if any(k[0] < 1 or k[0] > config.layers for k in clean):
            raise InputError(f"block layers must be in 1..{config.layers}")
        return self._submit(_blocks_task, config, clean)

    def submit_window(
        self, world: World | Config, x: int, y: int, w: int, h: int
    ) -> Future[I32Array]:
        """``World.region(x, y, w, h)`` computed in one worker: a future of ``(h, w)`` int32."""
        return self._submit(_window_task, _config_of(world), (int(x), int(y), int(w), int(h)))

    def submit_tile(self, world: World | Config, z: int, x: int, y: int) -> Future[bytes]:
        """PNG bytes of map tile ``(z, x, y)``
        (:func:`~worldgen.world.render.render_tile`), rendered in a worker."""
        return self._submit(_tile_task, _config_of(world), int(z), int(x), int(y))

    def region(
        self,
        world: World | Config,
        x: int,
        y: int,
        w: int,
        h: int,
        progress: Callable[[int], None] | None = None,
    ) -> I32Array:
        """``World.region(x, y, w, h)`` computed by all workers.

        The window is cut into pieces (:func:`plan_pieces`); the lower-layer blocks that several
        pieces read are computed first, once, in groups (:func:`shared_blocks`), and handed to
        the pieces that need them, so no block is computed twice. A piece starts as soon as its
        groups are done; results are written into the window as they arrive. ``progress(n)`` is
        called as each piece of ``n`` top-layer blocks arrives. The parent's own block cache is
        neither read nor filled (a large window would only thrash it).
        """
        config = _config_of(world)
        if w < 1 or h < 1:
            raise InputError(f"window size must be at least 1x1, got {w}x{h}")
        S, layers = config.S, config.layers
        pieces = plan_pieces((x, y, w, h), S, _offset(S, layers), self.workers)
        groups, needs = shared_blocks(pieces, S, layers) if layers > 1 else ([], [])
        waiting = [set(n) for n in needs] if needs else [set() for _ in pieces]
        done_groups: dict[int, I32Array] = {}
        out = np.empty((h, w), dtype=np.int32)
        pending: dict[Future[I32Array], tuple[str, int]] = {}

        def submit_piece(index: int) -> None:
            keys = [k for g in needs[index] for k in groups[g]] if needs else []
            blocks = np.concatenate([done_groups[g] for g in needs[index]]) if keys else None
            future = self._submit(_piece_task, config, pieces[index], keys, blocks)
            pending[future] = ("piece", index)

        try:
            for g, keys in enumerate(groups):
                pending[self._submit(_blocks_task, config, keys)] = ("group", g)
            for index, wanted in enumerate(waiting):
                if not wanted:
                    submit_piece(index)
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    kind, index = pending.pop(future)
                    result = future.result()
                    if kind == "group":
                        done_groups[index] = result
                        for p, wanted in enumerate(waiting):
                            if index in wanted:
                                wanted.discard(index)
                                if not wanted:
                                    submit_piece(p)
                        continue
                    px, py, pw, ph = pieces[index]
                    out[py - y : py - y + ph, px - x : px - x + pw] = result
                    if progress is not None:
                        progress(_top_blocks(pieces[index], S, layers))
        finally:
            for future in pending:
                future.cancel()
        return out

    # -------------------------------------------------------------------------------- lifetime
    def close(self, wait: bool = True) -> None:
        """Stop the workers (after the running tasks when ``wait``); pending tasks are cancelled."""
        with self._lock:
            self._closed = True
            self._executor.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _top_blocks(window: Window, S: int, layers: int) -> int:
    """How many top-layer blocks ``World.top_blocks`` lists for ``window`` (0 without layers)."""
    if layers == 0:
        return 0
    c0, c1, r0, r1 = _cone(window, S, layers)[layers]
    return (c1 - c0 + 1) * (r1 - r0 + 1)


def region_parallel(
    world: World,
    x: int,
    y: int,
    w: int,
    h: int,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> I32Array:
    """``world.region(x, y, w, h)`` computed by a :class:`WorkerPool` of ``workers`` processes
    started for this call (one-shot use such as the CLI; servers keep a pool instead).

    ``progress(n)`` is called as each piece of ``n`` top-layer blocks arrives (a progress bar).
    """
    config = _config_of(world)
    with WorkerPool(workers) as pool:
        return pool.region(config, x, y, w, h, progress)
