from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from worldgen.errors import InputError
from worldgen.world.cli_commands import add_world_commands


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="worldgen")
    add_world_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


COMMON = ("--tileset", "terrain", "--seed", "42", "--block-size", "8", "--variants", "3")


def test_region_json_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.json"
    geo = ("--x", "-7", "--y", "-4", "--width", "12", "--height", "10")
    assert run("region", *COMMON, *geo, "--out", str(out)) == 0
    doc = json.loads(out.read_text())
    assert (doc["x"], doc["y"], doc["width"], doc["height"]) == (-7, -4, 12, 10)
    assert len(doc["cells"]) == 120
    assert all(0 <= c < len(doc["tiles"]) for c in doc["cells"])
    assert doc["tiles"][0].split(" ")[1].isdigit()
    shuffled = tmp_path / "s.json"
    assert run("region", *COMMON, *geo, "--order", "shuffle", "--out", str(shuffled)) == 0
    assert shuffled.read_bytes() == out.read_bytes()
    png = tmp_path / "r.png"
    assert run("region", *COMMON, *geo, "--out", str(png)) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_tile_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "t.png"
    assert run("tile", *COMMON, "--z", "0", "--x", "-1", "--y", "3", "--out", str(out)) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--sample", "x.png", "--seed", "1"), "not supported yet"),
        (("--tileset", "nope", "--seed", "1"), "unknown tileset"),
        (("--tileset", "missing.xml", "--seed", "1"), "does not exist"),
    ],
)
def test_bad_input_raises_input_error(argv: tuple[str, ...], message: str, tmp_path: Path) -> None:
    geo = ("--x", "0", "--y", "0", "--width", "4", "--height", "4")
    with pytest.raises(InputError, match=message):
        run("region", *argv, *geo, "--out", str(tmp_path / "o.json"))


def test_bad_output_suffix(tmp_path: Path) -> None:
    geo = ("--x", "0", "--y", "0", "--width", "4", "--height", "4")
    with pytest.raises(InputError, match="--out"):
        run("region", *COMMON, *geo, "--out", str(tmp_path / "o.txt"))
