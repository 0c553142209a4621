"""The legend of every bundled model: families of tiles, colours of samples, and names for every
label a region document can hold."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from worldgen import tilesets
from worldgen.engine.patterns import extract_patterns, load_sample
from worldgen.engine.tileset import load_tileset
from worldgen.errors import InputError
from worldgen.tilesets import Kind
from worldgen.world.legend import colour_name, legend_document, legend_for
from worldgen.world.model import sample_model, tileset_model
from worldgen.world.spec import WorldSpec

BUNDLED = [(e.name, e.kind) for e in tilesets.catalog()]


def _spec(name: str, kind: Kind) -> WorldSpec:
    return WorldSpec.of_kind(kind, name, 0)


def _region_keys(name: str, kind: Kind) -> set[str]:
    """Every key a region document of this model can hold (tile names or colours)."""
    entry = tilesets.lookup(name, kind)
    assert entry is not None
    if kind == "tiled":
        model = tileset_model(load_tileset(entry.path, None, load_images=False))
        return {label.rsplit(" ", 1)[0] for label in model.labels}
    sample, palette = load_sample(entry.path)
    return set(sample_model(extract_patterns(sample, palette, 3, 8, True), name).labels)


@pytest.mark.parametrize(("name", "kind"), BUNDLED)
def test_every_label_has_a_name_and_an_entry(name: str, kind: Kind) -> None:
    legend = legend_for(_spec(name, kind))
    keys = _region_keys(name, kind)
    assert keys <= set(legend.names)
    members = [m for e in legend.entries for m in e.members]
    assert sorted(members) == sorted(set(members))  # each key in one entry
    assert keys <= set(members)
    assert sum(e.share for e in legend.entries) == pytest.approx(1.0)
    assert all(0 < e.share <= 1 for e in legend.entries)
    assert len({e.label for e in legend.entries}) == len(legend.entries)  # no two alike
    for entry in legend.entries:
        with Image.open(io.BytesIO(entry.picture)) as im:
            assert im.size == (16, 16)


def test_terrain_groups_transitions_under_their_family_by_class() -> None:
    legend = legend_for(_spec("terrain", "tiled"))
    assert legend.classes == ("ocean", "lowland", "highland")
    labels = [e.label for e in legend.entries]
    assert labels[:2] == ["deep", "shallow"]  # ocean first, in file order
    deep = legend.entries[0]
    assert deep.class_name == "ocean"
    assert "deep_shallow_edge" in deep.members
    assert legend.names["deep_shallow_edge"] == "deep shallow edge"
    # classes appear in their order, never interleaved
    seen = [e.class_name for e in legend.entries]
    assert seen == sorted(seen, key=lambda c: legend.classes.index(c or ""))


def test_tileset_picture_is_the_family_tile() -> None:
    legend = legend_for(_spec("pipes", "tiled"))
    entry = tilesets.lookup("pipes", "tiled")
    assert entry is not None
    model = tileset_model(load_tileset(entry.path))
    assert model.images is not None
    pipe = next(e for e in legend.entries if e.label == "pipe")
    with Image.open(io.BytesIO(pipe.picture)) as im:
        drawn = np.asarray(im.convert("RGB"))
    assert np.array_equal(drawn, model.images[model.labels.index("pipe 0")])
    assert legend.classes == ()  # one class: no grouping
    assert {"pipe_t", "pipe_turn", "pipe_over_wire"} <= set(pipe.members)


def test_sample_entries_are_its_colours_most_frequent_first() -> None:
    legend = legend_for(_spec("flowers", "overlapping"))
    shares = [e.share for e in legend.entries]
    assert shares == sorted(shares, reverse=True)
    assert legend.entries[0].label == "light blue"  # the sky
    assert all(e.members == (e.colour,) for e in legend.entries)


def test_document_is_plain_json_with_data_urls() -> None:
    doc = legend_document(legend_for(_spec("lakes", "overlapping")))
    assert doc["kind"] == "overlapping"
    entries = doc["entries"]
    assert isinstance(entries, list)
    assert all(e["picture"].startswith("data:image/png;base64,") for e in entries)
    assert set(doc) == {"kind", "classes", "entries", "names"}


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((0, 0, 0), "black"),
        ((255, 255, 255), "white"),
        ((128, 128, 128), "grey"),
        ((52, 116, 186), "blue"),
        ((116, 78, 44), "brown"),
        ((224, 204, 146), "beige"),
        ((150, 202, 240), "light blue"),
        ((20, 60, 20), "dark green"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert colour_name(rgb) == name


def test_unknown_model_is_an_input_error() -> None:
    with pytest.raises(InputError):
        legend_for(WorldSpec("tileset", "no-such-tileset", 0))
