from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from worldgen import tilesets
from worldgen.cli import COMMANDS, main
from worldgen.cli._terminal import PROGRESS_MIN_BLOCKS, progress_bar
from worldgen.errors import InputError
from worldgen.world.api import build_world
from worldgen.world.spec import WorldSpec

HEX = re.compile(r"#[0-9a-f]{6}")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="worldgen")
    sub = parser.add_subparsers(required=True)
    for command in (c for c in COMMANDS if c.module == "world"):
        command.add_arguments(sub.add_parser(command.name))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


COMMON = ("--tileset", "terrain", "--seed", "42", "--block-size", "8", "--variants", "3")
SAMPLE = ("--sample", "lakes", "--seed", "42", "--block-size", "8", "--variants", "2")
GEO = ("--x", "-7", "--y", "-4", "--width", "12", "--height", "10")


@pytest.fixture(autouse=True)
def _cache(world_cache: Path) -> None:
    """Every command here shares the session's library cache."""


def test_region_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run("region", *COMMON, *GEO, "--out", str(out)) == 0
    doc = json.loads(out.read_text())
    assert list(doc) == ["x", "y", "width", "height", "tiles", "cells"]
    assert (doc["x"], doc["y"], doc["width"], doc["height"]) == (-7, -4, 12, 10)
    assert len(doc["cells"]) == 120
    assert all(0 <= c < len(doc["tiles"]) for c in doc["cells"])
    assert doc["tiles"][0].split(" ")[1].isdigit()
    shuffled = tmp_path / "s.json"
    assert run("region", *COMMON, *GEO, "--order", "shuffle", "--out", str(shuffled)) == 0
    assert shuffled.read_bytes() == out.read_bytes()
    png = tmp_path / "r.png"
    assert run("region", *COMMON, *GEO, "--out", str(png)) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sample_region_json_has_colors(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert run("region", *SAMPLE, *GEO, "--out", str(out)) == 0
    doc = json.loads(out.read_text())
    assert list(doc) == ["x", "y", "width", "height", "colors", "cells"]
    world = build_world(WorldSpec("sample", "lakes", 42, S=8, V=2))
    assert len(doc["colors"]) == world.model.size  # one colour per pattern: its top-left pixel
    assert all(HEX.fullmatch(c) for c in doc["colors"])
    assert all(0 <= c < len(doc["colors"]) for c in doc["cells"])
    assert doc["cells"] == world.region(-7, -4, 12, 10).reshape(-1).tolist()
    reverse = tmp_path / "v.json"
    assert run("region", *SAMPLE, *GEO, "--order", "reverse", "--out", str(reverse)) == 0
    assert reverse.read_bytes() == out.read_bytes()


def test_sample_given_as_a_file_path(tmp_path: Path) -> None:
    png = tilesets.ROOT / "samples" / "corridors.png"
    by_path, by_name = tmp_path / "p.json", tmp_path / "n.json"
    rest = ("--seed", "3", "--block-size", "8", "--variants", "2", *GEO)
    assert run("region", "--sample", str(png), *rest, "--out", str(by_path)) == 0
    assert run("region", "--sample", "corridors", *rest, "--out", str(by_name)) == 0
    assert by_path.read_bytes() == by_name.read_bytes()


def test_tile_command(tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    assert run("tile", *COMMON, "--z", "0", "--x", "-1", "--y", "3", "--out", str(out)) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    sample = tmp_path / "s.png"
    assert run("tile", *SAMPLE, "--z", "2", "--x", "-1", "--y", "3", "--out", str(sample)) == 0
    assert sample.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--sample", "x.png", "--seed", "1"), "does not exist"),
        (("--sample", "terrain", "--seed", "1"), "is a bundled tileset"),
        (("--tileset", "lakes", "--seed", "1"), "is a bundled sample"),
        (("--tileset", "nope", "--seed", "1"), "no bundled tileset named 'nope'"),
        (("--tileset", "missing.xml", "--seed", "1"), "does not exist"),
        (("--sample", "lakes", "--subset", "a", "--seed", "1"), "subset"),
    ],
)
def test_bad_input_raises_input_error(argv: tuple[str, ...], message: str, tmp_path: Path) -> None:
    geo = ("--x", "0", "--y", "0", "--width", "4", "--height", "4")
    with pytest.raises(InputError, match=message):
        run("region", *argv, *geo, "--out", str(tmp_path / "o.json"))


def test_bad_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--out"):
        run("region", *COMMON, *GEO, "--out", str(tmp_path / "o.txt"))


# Each limit is tried at the limit (exit 0) and one past it (exit 2). Cheap settings: no
# refinement layers (or a tiny window), so the accepted runs cost a base-layer look-up.
CHEAP = ("--sample", "lakes", "--seed", "1", "--block-size", "8", "--variants", "2")
CHEAP_DEFAULTS = {"--block-size": "8", "--variants": "2"}
LIMITS = [
    ("--width", "4096", "4097", ("--height", "1", "--layers", "0")),
    ("--height", "4096", "4097", ("--width", "1", "--layers", "0")),
    ("--width", "1", "0", ("--height", "1")),
    ("--workers", "64", "65", ("--width", "4", "--height", "4", "--layers", "0")),
    ("--workers", "1", "0", ("--width", "4", "--height", "4")),
    ("--layers", "3", "4", ("--width", "4", "--height", "4")),
    ("--layers", "0", "-1", ("--width", "4", "--height", "4")),
    ("--N", "2", "1", ("--width", "4", "--height", "4", "--layers", "0")),
    ("--variants", "1", "0", ("--width", "4", "--height", "4", "--layers", "0")),
    ("--block-size", "4", "2", ("--width", "4", "--height", "4", "--layers", "0")),
]


@pytest.mark.parametrize(("option", "ok", "bad", "rest"), LIMITS, ids=lambda v: str(v))
def test_region_limits_exit_codes(
    option: str,
    ok: str,
    bad: str,
    rest: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = {"--sample": "lakes", "--seed": "1", **CHEAP_DEFAULTS}
    options.pop(option, None)
    base = [part for pair in options.items() for part in pair]
    argv = ["region", *base, "--x", "-3", "--y", "5", *rest, "--out", str(tmp_path / "o.json")]
    assert main([*argv, f"{option}={ok}"]) == 0
    assert main([*argv, f"{option}={bad}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("worldgen: error: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "bad"),
    [
        ("--N", "6"),
        ("--symmetry", "3"),
        ("--block-size", "7"),
        ("--block-size", "66"),
        ("--variants", "17"),
    ],
)
def test_other_bad_values_exit_2(option: str, bad: str, tmp_path: Path) -> None:
    argv = ["region", *CHEAP, "--x", "0", "--y", "0", "--width", "4", "--height", "4"]
    assert main([*argv, f"{option}={bad}", "--out", str(tmp_path / "o.json")]) == 2


def test_tile_zoom_limits(tmp_path: Path) -> None:
    base = ["tile", *CHEAP, "--x", "0", "--y", "0", "--out", str(tmp_path / "t.png")]
    assert main([*base, "--z=-10"]) == 0
    assert main([*base, "--z=-11"]) == 2
    assert main([*base, "--z=3"]) == 2


def test_progress_bar_only_on_a_terminal_for_big_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    with progress_bar(PROGRESS_MIN_BLOCKS + 1) as advance:
        assert advance is None  # stderr is captured, not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with progress_bar(PROGRESS_MIN_BLOCKS) as advance:
        assert advance is None  # small job
    with progress_bar(PROGRESS_MIN_BLOCKS + 1) as advance:
        assert advance is not None
        advance(PROGRESS_MIN_BLOCKS + 1)


def test_region_reports_progress_per_top_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)

    def spy(total: int) -> AbstractContextManager[Callable[[int], None] | None]:
        calls.append(total)
        return progress_bar(total)

    monkeypatch.setattr("worldgen.cli.world.progress_bar", spy)
    geo = ("--x", "0", "--y", "0", "--width", "80", "--height", "80")
    assert run("region", *SAMPLE, *geo, "--out", str(tmp_path / "o.json")) == 0
    world = build_world(WorldSpec("sample", "lakes", 42, S=8, V=2))
    assert calls == [len(world.top_blocks(0, 0, 80, 80))]
