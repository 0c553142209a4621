from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from worldgen import tilesets
from worldgen.engine.patterns import OverlappingModel, extract_patterns, load_sample
from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.errors import InputError
from worldgen.world.blocks import World
from worldgen.world.model import CELL_PX, as_world_model, sample_model, tileset_model
from worldgen.world.patches import library_version, load_or_build

from .conftest import BUNDLED_TERRAIN


def lakes_patterns() -> OverlappingModel:
    sample, palette = load_sample(tilesets.resolve("lakes", "overlapping"))
    return extract_patterns(sample, palette, 3, 8)


def test_tileset_model_keeps_variants_classes_and_pictures(
    tilesets: dict[Path, Tileset],
) -> None:
    ts = tilesets[BUNDLED_TERRAIN]
    model = tileset_model(ts)
    assert model.kind == "tiled"
    assert model.prefer_plain
    assert model.labels == ts.variant_names
    assert model.class_names == ("ocean", "lowland", "highland")  # tags split off
    assert ts.class_names()[0] == "ocean:deep"
    assert model.variant_tags[model.labels.index("dunes 0")] == ("dry",)
    assert model.images is not None
    assert model.images.shape == (ts.size, CELL_PX, CELL_PX, 3)
    assert as_world_model(ts) is as_world_model(ts)  # memoised: shared compiled rules


def test_sample_model_shows_each_patterns_top_left_pixel() -> None:
    patterns = lakes_patterns()
    model = sample_model(patterns, "lakes")
    assert model.kind == "overlapping"
    assert not model.prefer_plain
    assert model.class_names == ("all",)
    assert set(model.variant_class.tolist()) == {0}
    assert model.colours is not None
    assert model.images is not None
    top_left = patterns.palette[patterns.patterns[:, 0, 0], :3]
    assert np.array_equal(model.colours, top_left)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", label) for label in model.labels)
    r, g, b = (int(v) for v in top_left[0])
    assert model.labels[0] == f"#{r:02x}{g:02x}{b:02x}"
    assert np.all(model.images == model.colours[:, None, None, :])  # flat squares
    assert model.allowed is patterns.allowed


def test_recoloured_sample_shares_the_library_but_not_the_version(lib_dir: Path) -> None:
    patterns = lakes_patterns()
    recoloured = extract_patterns(
        load_sample(tilesets.resolve("lakes", "overlapping"))[0],
        np.ascontiguousarray(patterns.palette[:, [2, 1, 0, 3]]),
        3,
        8,
    )
    a, b = sample_model(patterns, "lakes"), sample_model(recoloured, "lakes")
    assert library_version(a, 8, 2) == library_version(b, 8, 2)
    lib = load_or_build(a, 8, 2, lib_dir)
    wa, wb = World(a, 1, S=8, V=2, library=lib), World(b, 1, S=8, V=2, library=lib)
    assert wa.version != wb.version
    assert np.array_equal(wa.region(0, 0, 20, 20), wb.region(0, 0, 20, 20))


def _tagged_tileset(tmp_path: Path, classes: tuple[str, str]) -> Path:
    xml = tmp_path / "tagged.xml"
    xml.write_text(
        '<set unique="False"><tiles>'
        f'<tile name="a" symmetry="X" weight="1" class="{classes[0]}"/>'
        f'<tile name="b" symmetry="X" weight="1" class="{classes[1]}"/>'
        '</tiles><neighbors><neighbor left="a" right="a"/><neighbor left="a" right="b"/>'
        '<neighbor left="b" right="b"/></neighbors></set>',
        encoding="utf-8",
    )
    return xml


def test_climate_tags_split_from_the_class(tmp_path: Path) -> None:
    ts = load_tileset(_tagged_tileset(tmp_path, ("lowland:dry+cold", "lowland")), load_images=False)
    model = tileset_model(ts)
    assert model.class_names == ("lowland",)
    assert model.variant_class.tolist() == [0, 0]
    assert model.variant_tags == (("dry", "cold"), ())
    plain = tileset_model(load_tileset(_tagged_tileset(tmp_path, ("x", "y")), load_images=False))
    assert plain.variant_tags == ()  # no tags at all: the world's bias is the level band only


def test_unknown_climate_tag_is_refused(tmp_path: Path) -> None:
    ts = load_tileset(_tagged_tileset(tmp_path, ("lowland:hot", "lowland")), load_images=False)
    with pytest.raises(InputError, match="unknown climate tag 'hot'"):
        tileset_model(ts)
