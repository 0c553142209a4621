from __future__ import annotations

import dataclasses
import io
import json
import re
import threading
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from PIL import Image

from worldgen import tilesets
from worldgen.engine.patterns import extract_patterns, load_sample
from worldgen.errors import InputError
from worldgen.world.api import (
    CatalogEntry,
    build_world,
    catalog,
    export_png,
    preview_png,
    region_doc,
    tile_png,
)
from worldgen.world.render import render_tile
from worldgen.world.spec import MAX_EXPORT_PX, MAX_REGION_SIDE, WorldSpec

from .conftest import BUNDLED_TERRAIN

VERSION = re.compile(r"[0-9a-f]{24}-[0-9a-f]{8}-L[0-3]-t[0-9]+")
LAKES = WorldSpec("sample", "lakes", 42, S=8, V=2)
TERRAIN = WorldSpec("tileset", "terrain", 42, S=8, V=3)


@pytest.fixture(autouse=True)
def _cache(world_cache: Path) -> None:
    """Every world here shares the session's library cache."""


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_spec_is_json_round_trippable() -> None:
    spec = WorldSpec("tileset", "terrain", 7, subset=None, S=8)
    doc = json.loads(json.dumps(dataclasses.asdict(spec)))
    assert WorldSpec(**doc) == spec
    assert list(doc) == [
        "source", "name", "seed", "subset", "N", "symmetry", "S", "V", "layers", "ground"
    ]  # fmt: skip


def test_default_spec_takes_the_catalogs_model_settings() -> None:
    """A bundled sample's world uses the settings its catalog entry is drawn for: flowers is a
    side view (symmetry 2, a ground row), lakes the plain defaults at block size 16."""
    flowers = WorldSpec.of_kind("overlapping", "flowers", 3)
    assert (flowers.symmetry, flowers.ground) == (2, True)
    assert build_world(flowers).lib.ground is not None
    assert WorldSpec.of_kind("overlapping", "lakes", 3) == WorldSpec("sample", "lakes", 3, S=16)
    assert WorldSpec.of_kind("tiled", "terrain", 3) == WorldSpec("tileset", "terrain", 3)
    assert flowers.model_key == WorldSpec("sample", "flowers", 0, symmetry=2, ground=True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (WorldSpec("tileset", "terrain", 1, ground=True), "ground applies to samples only"),
        (WorldSpec("sample", "lakes", 1, ground=1), "ground must be true or false"),  # type: ignore[arg-type]
    ],
)
def test_bad_ground_is_refused(spec: WorldSpec, message: str) -> None:
    with pytest.raises(InputError, match=message):
        spec.check()


@pytest.mark.parametrize("spec", [LAKES, TERRAIN], ids=["sample", "tileset"])
def test_build_world_records_its_spec_and_version(spec: WorldSpec) -> None:
    world = build_world(spec)
    assert world.config == spec
    assert VERSION.fullmatch(world.version)
    assert (world.S, world.V, world.layers, world.seed) == (spec.S, spec.V, spec.layers, spec.seed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "picture"}, "source"),
        ({"name": ""}, "name"),
        ({"seed": True}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"N": 1}, "N"),
        ({"N": 6}, "N"),
        ({"symmetry": 3}, "symmetry"),
        ({"S": 2}, "S"),
        ({"S": 66}, "S"),
        ({"S": 9}, "even"),
        ({"V": 0}, "V"),
        ({"V": 17}, "V"),
        ({"layers": 4}, "layers"),
        ({"subset": "x"}, "subset"),
        ({"name": "terrain"}, "bundled tileset"),
        ({"name": "nope"}, "unknown sample 'nope'"),
    ],
)
def test_bad_specs_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_world(dataclasses.replace(LAKES, **change))  # type: ignore[arg-type]


def test_files_only_when_allowed() -> None:
    spec = WorldSpec("tileset", str(BUNDLED_TERRAIN), 1, S=8, V=3)
    with pytest.raises(InputError, match="bundled"):
        build_world(spec)
    assert build_world(spec, allow_files=True).model.name == "terrain"


def test_catalog_lists_bundled_entries_with_counts() -> None:
    entries = catalog()
    assert all(isinstance(e, CatalogEntry) for e in entries)
    assert [(e.name, e.kind) for e in entries] == [(e.name, e.kind) for e in tilesets.catalog()]
    lakes = next(e for e in entries if e.name == "lakes")
    sample, palette = load_sample(tilesets.resolve("lakes", "overlapping"))
    assert lakes.count == extract_patterns(sample, palette, 3, 8).size
    assert all(e.count > 0 and e.description for e in entries)


@pytest.mark.parametrize("name", ["terrain", "lakes", "city"])
def test_preview_png_is_small_and_deterministic(name: str) -> None:
    data = preview_png(name)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert max(png_size(data)) == 64
    assert max(png_size(preview_png(name, 256))) == 256
    assert preview_png.__wrapped__(name) == data  # the same bytes without the memo


@pytest.mark.parametrize(("name", "size"), [("lakes", 257), ("lakes", 7), ("nope", 64)])
def test_preview_png_refuses_bad_input(name: str, size: int) -> None:
    with pytest.raises(InputError):
        preview_png(name, size)


def test_region_doc_formats() -> None:
    sample = region_doc(build_world(LAKES), -3, 4, 5, 2)
    assert list(sample) == ["x", "y", "width", "height", "colors", "cells"]
    colors = cast(list[str], sample["colors"])
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colors)
    assert all(0 <= c < len(colors) for c in cast(list[int], sample["cells"]))
    tiled = region_doc(build_world(TERRAIN), -3, 4, 5, 2)
    assert list(tiled) == ["x", "y", "width", "height", "tiles", "cells"]
    assert len(cast(list[int], tiled["cells"])) == 10
    with pytest.raises(InputError, match="width"):
        region_doc(build_world(LAKES), 0, 0, MAX_REGION_SIDE + 1, 1)


def test_tile_png_is_render_tile() -> None:
    assert tile_png(build_world(LAKES), 2, -1, 3) == render_tile(build_world(LAKES), 2, -1, 3)


@pytest.mark.parametrize("scale", [1, 3, 16])
def test_export_png_size_and_flat_sample_cells(scale: int) -> None:
    world = build_world(LAKES)
    data = export_png(world, -5, 7, 9, 4, scale)
    assert png_size(data) == (9 * scale, 4 * scale)
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    assert world.model.colours is not None
    expected = world.model.colours[world.region(-5, 7, 9, 4)]
    # every cell is a flat square of its pattern's colour, at any scale
    assert np.array_equal(rgb[::scale, ::scale], expected)
    assert np.array_equal(rgb[scale - 1 :: scale, scale - 1 :: scale], expected)


def test_export_png_limits() -> None:
    flat = build_world(dataclasses.replace(LAKES, layers=0))
    assert png_size(export_png(flat, 0, 0, MAX_EXPORT_PX // 4, 1, 4)) == (MAX_EXPORT_PX, 4)
    with pytest.raises(InputError, match="4096"):
        export_png(flat, 0, 0, MAX_EXPORT_PX // 4 + 1, 1, 4)
    for scale in (0, 17):
        with pytest.raises(InputError, match="scale"):
            export_png(flat, 0, 0, 4, 4, scale)


def test_concurrent_calls_on_one_world_agree() -> None:
    serial = [tile_png(build_world(LAKES), 2, k, -k) for k in range(6)]
    world = build_world(LAKES)
    got: dict[int, bytes] = {}

    def work(k: int) -> None:
        got[k] = tile_png(world, 2, k, -k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[k] for k in range(6)] == serial
