"""Tests of the ``worldgen`` command line: outputs, formats, bundled names, and exit codes.

Most runs call :func:`worldgen.cli.main` in-process (fast, output captured by capsys); one test
runs the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reference.naive_wfc import is_valid_tiling
from worldgen import tilesets
from worldgen.cli import build_parser, main
from worldgen.cli._io import MAX_SIDE
from worldgen.engine.tileset import load_tileset

STATS_KEYS = {
    "status",
    "setup_s",
    "solve_s",
    "patterns",
    "attempts",
    "backtracks",
    "observations",
    "reason",
    "width",
    "height",
    "seed",
    "jit_warmup_s",
}

Outcome = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """``main(argv)``: the exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_tileset(
    folder: Path, tiles: str, neighbors: str = "", *, images: str = "", extra: str = ""
) -> Path:
    """A classic XML tileset ``t.xml``, with a 2x2 image for each tile named in ``images``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t.xml"
    path.write_text(
        f"<set><tiles>{tiles}</tiles><neighbors>{neighbors}</neighbors>{extra}</set>",
        encoding="utf-8",
    )
    for k, name in enumerate(images.split()):
        Image.new("RGBA", (2, 2), (60 * k, 0, 255 - 60 * k, 255)).save(folder / f"{name}.png")
    return path


CHECKER_TILES = '<tile name="A" symmetry="X"/><tile name="B" symmetry="X"/>'
CHECKER_NEIGHBORS = '<neighbor left="A" right="B"/>'
# Tiles of two classes (A*, B*) that must alternate like a checkerboard: an odd torus has no
# tiling, yet every tile has a neighbour in every direction, so the failure shows only while
# solving. Two tiles per class keep cells undecided during propagation.
PARITY_NAMES = "A1 A2 B1 B2"
PARITY_TILES = "".join(f'<tile name="{t}" symmetry="X"/>' for t in PARITY_NAMES.split())
PARITY_NEIGHBORS = "".join(
    f'<neighbor left="{a}" right="{b}"/>' for a in ("A1", "A2") for b in ("B1", "B2")
)


# ---------------------------------------------------------------- successful generation


def test_generate_overlapping_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.png"
    code, stdout, err = run(
        capsys,
        "generate",
        "--sample",
        "flowers",
        "--size",
        "24x16",
        "--seed",
        "7",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert str(out) in stdout
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.mode == "RGBA"
        assert im.size == (24 * 4, 16 * 4)  # default scale 4 for samples


def test_generate_sample_from_path_with_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tilesets.resolve("flowers", "overlapping")
    out = tmp_path / "f.png"
    code, _, err = run(
        capsys,
        "generate",
        "--sample",
        str(sample),
        "--N",
        "2",
        "--symmetry",
        "2",
        "--no-periodic-input",
        "--size",
        "20x12",
        "--seed",
        "1",
        "--periodic",
        "--heuristic",
        "scanline",
        "--scale",
        "1",
        "--out",
        str(out),
    )
    assert code == 0, err
    with Image.open(out) as im:
        assert im.size == (20, 12)


def test_generate_overlapping_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "f.json"
    code, _, err = run(
        capsys, "generate", "--sample", "flowers", "--size", "12x9", "--out", str(out)
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert set(doc) == {"width", "height", "colors", "cells"}
    assert len(doc["cells"]) == 12 * 9
    assert all(0 <= c < len(doc["colors"]) for c in doc["cells"])


def test_generate_tiled_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.png"
    code, _, err = run(
        capsys, "generate", "--tileset", "roads", "--size", "8x6", "--seed", "3", "--out", str(out)
    )
    assert code == 0, err
    size = load_tileset(tilesets.resolve("roads", "tiled")).tile_size
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (8 * size, 6 * size)  # default scale 1 for tiles


def test_generate_tiled_png_scaled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.png"
    code, _, err = run(
        capsys,
        "generate",
        "--tileset",
        "pipes",
        "--size",
        "5x4",
        "--scale",
        "2",
        "--out",
        str(out),
    )
    assert code == 0, err
    size = load_tileset(tilesets.resolve("pipes", "tiled")).tile_size
    with Image.open(out) as im:
        assert im.size == (5 * size * 2, 4 * size * 2)


@pytest.mark.parametrize("periodic", [False, True])
def test_generate_tiled_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], periodic: bool
) -> None:
    out = tmp_path / "t.json"
    flags = ["--periodic"] if periodic else []
    code, _, err = run(
        capsys,
        "generate",
        "--tileset",
        "terrain",
        "--size",
        "16x12",
        "--seed",
        "3",
        "--out",
        str(out),
        *flags,
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert set(doc) == {"width", "height", "tiles", "cells"}
    assert (doc["width"], doc["height"]) == (16, 12)
    assert len(doc["cells"]) == 16 * 12
    terrain = load_tileset(tilesets.resolve("terrain", "tiled"), load_images=False)
    assert doc["tiles"] == list(terrain.variant_names)
    for name in doc["tiles"]:
        tile, k = name.split(" ")
        assert tile
        assert k.isdigit()
    ids = [terrain.variant_id(doc["tiles"][c]) for c in doc["cells"]]
    grid = np.array(ids).reshape(12, 16)
    assert is_valid_tiling(grid, terrain.allowed, periodic=periodic)


def test_generate_tiled_from_json_tileset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tileset = tmp_path / "t.json"
    doc = {
        "format": "worldgen-tileset",
        "version": 1,
        "tiles": [{"name": "A", "symmetry": "X"}, {"name": "B", "symmetry": "X"}],
        "neighbors": [{"left": "A", "right": "B"}, {"left": "A", "right": "A"}],
    }
    tileset.write_text(json.dumps(doc))
    out = tmp_path / "o.json"
    code, _, err = run(
        capsys, "generate", "--tileset", str(tileset), "--size", "6x6", "--out", str(out)
    )
    assert code == 0, err
    assert len(json.loads(out.read_text())["cells"]) == 36


def test_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = '<subsets><subset name="only_a"><tile name="A"/></subset></subsets>'
    path = write_tileset(tmp_path, CHECKER_TILES, '<neighbor left="A" right="A"/>', extra=extra)
    out = tmp_path / "o.json"
    code, _, err = run(
        capsys,
        "generate",
        "--tileset",
        str(path),
        "--subset",
        "only_a",
        "--size",
        "3x3",
        "--out",
        str(out),
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["tiles"] == ["A 0"]
    assert set(doc["cells"]) == {0}


def test_size_at_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wide.json"
    code, _, err = run(
        capsys, "generate", "--tileset", "roads", "--size", f"{MAX_SIDE}x1", "--out", str(out)
    )
    assert code == 0, err
    assert len(json.loads(out.read_text())["cells"]) == MAX_SIDE


def test_stats_line_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(
        capsys,
        "generate",
        "--tileset",
        "roads",
        "--size",
        "6x5",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "o.png"),
        "--stats",
    )
    assert code == 0
    stats = json.loads(stdout.strip().splitlines()[-1])
    assert set(stats) >= STATS_KEYS
    assert stats["status"] == "solved"
    assert stats["reason"] is None
    assert (stats["width"], stats["height"], stats["seed"]) == (6, 5, 4)
    assert stats["solve_s"] >= 0
    assert stats["jit_warmup_s"] >= 0


def test_stats_line_from_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "worldgen"
    out = tmp_path / "s.png"
    proc = subprocess.run(
        [
            str(script),
            "generate",
            "--sample",
            "flowers",
            "--size",
            "16x12",
            "--seed",
            "2",
            "--out",
            str(out),
            "--stats",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(stats) >= STATS_KEYS
    assert stats["status"] == "solved"
    assert stats["patterns"] > 0
    assert stats["attempts"] >= 1
    assert out.is_file()


# ---------------------------------------------------------------- other commands


def test_tilesets_lists_every_catalog_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "tilesets")
    assert code == 0
    lines = stdout.splitlines()
    for entry in tilesets.catalog():
        line = next(x for x in lines if x.split()[0] == entry.name)
        assert entry.kind in line
        assert str(entry.path) in line
        assert entry.description in line
        assert ("patterns" if entry.kind == "overlapping" else "tiles") in line


def test_tilesets_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "tilesets", "--json")
    assert code == 0
    rows = json.loads(stdout)
    assert [r["name"] for r in rows] == [e.name for e in tilesets.catalog()]
    assert all(Path(r["path"]).is_file() for r in rows)


def test_demo_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "demo.png"
    code, stdout, err = run(capsys, "demo", "--out", str(out))
    assert code == 0, err
    assert str(out) in stdout
    size = load_tileset(tilesets.resolve("terrain", "tiled")).tile_size
    with Image.open(out) as im:
        assert im.size == (64 * size, 48 * size)


def test_demo_default_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = run(capsys, "demo", "--size", "8x8")
    assert code == 0
    assert (tmp_path / "out" / "demo.png").is_file()
    assert "out/demo.png" in stdout


def test_resolve_prefers_bundled_names_and_accepts_paths(tmp_path: Path) -> None:
    assert tilesets.resolve("terrain", "tiled").name == "terrain.xml"
    local = write_tileset(tmp_path, CHECKER_TILES)
    assert tilesets.resolve(str(local), "tiled") == local


# ---------------------------------------------------------------- exit code 1: no solution


def test_unsatisfiable_tileset_exits_1_and_writes_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tileset(tmp_path, PARITY_TILES, PARITY_NEIGHBORS, images=PARITY_NAMES)
    out = tmp_path / "o.png"
    code, stdout, err = run(
        capsys,
        "generate",
        "--tileset",
        str(path),
        "--size",
        "3x3",
        "--periodic",
        "--max-attempts",
        "1",
        "--max-backtracks",
        "0",
        "--out",
        str(out),
        "--stats",
    )
    assert code == 1
    assert "worldgen: error: no solution found within the budget" in err
    assert "--max-attempts" in err
    assert "--seed" in err
    assert "partial result" in err
    assert "Traceback" not in err
    with Image.open(out) as im:
        assert im.size == (6, 6)
    stats = json.loads(stdout.strip().splitlines()[-1])
    assert stats["status"] == "failed"
    assert stats["reason"] in ("contradiction", "budget")
    assert stats["attempts"] == 1


def test_unsatisfiable_json_marks_undetermined_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tileset(tmp_path, PARITY_TILES, PARITY_NEIGHBORS)
    out = tmp_path / "o.json"
    code, stdout, _ = run(
        capsys,
        "generate",
        "--tileset",
        str(path),
        "--size",
        "3x3",
        "--periodic",
        "--max-attempts",
        "1",
        "--max-backtracks",
        "0",
        "--out",
        str(out),
    )
    assert code == 1
    assert stdout == ""
    cells = json.loads(out.read_text())["cells"]
    assert len(cells) == 9
    assert -1 in cells


@pytest.mark.parametrize(
    ("tiles", "neighbors"),
    [(CHECKER_TILES, CHECKER_NEIGHBORS), ('<tile name="A" symmetry="X"/>', "")],
    ids=["checkerboard-on-odd-torus", "tile-without-neighbours"],
)
def test_unsolvable_input_is_never_reported_solved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiles: str, neighbors: str
) -> None:
    """Inputs with no valid output at all, where every cell is decided early: exit 1 and no
    "wrote" line, however the solver's budget runs out."""
    path = write_tileset(tmp_path, tiles, neighbors)
    out = str(tmp_path / "o.json")
    code, stdout, err = run(
        capsys, "generate", "--tileset", str(path), "--size", "3x3", "--periodic", "--out", out
    )
    assert code == 1
    assert "no solution" in err
    assert "wrote" not in stdout


def test_tile_without_neighbours_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tileset(tmp_path, CHECKER_TILES)  # no neighbor entries at all
    code, _, err = run(
        capsys,
        "generate",
        "--tileset",
        str(path),
        "--size",
        "4x4",
        "--out",
        str(tmp_path / "o.json"),
    )
    assert code == 1
    assert "no solution" in err
    assert "another seed will not help" in err


# ---------------------------------------------------------------- exit code 2: bad input


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = {
        "malformed_xml": tmp_path / "bad.xml",
        "malformed_json": tmp_path / "bad.json",
        "not_png": tmp_path / "notes.png",
    }
    files["malformed_xml"].write_text("<set><tiles><tile name='A'></tiles></set>")
    files["malformed_json"].write_text('{"format": "worldgen-tileset", "tiles": [}')
    files["not_png"].write_text("this is not an image")
    files["symmetry"] = write_tileset(tmp_path / "sym", '<tile name="A" symmetry="Q"/>')
    files["neighbour"] = write_tileset(
        tmp_path / "nb", '<tile name="A" symmetry="X"/>', '<neighbor left="A" right="Z"/>'
    )
    return files


BAD_TILESET_CASES = [
    ("missing.xml", "does not exist"),
    ("malformed_xml", "malformed XML"),
    ("malformed_json", "malformed JSON"),
    ("symmetry", "unknown symmetry"),
    ("neighbour", 'unknown tile "Z"'),
    ("nope", "no bundled tileset named 'nope'"),
    ("lakes", "is a bundled sample, not a tileset"),
]


@pytest.mark.parametrize(("which", "phrase"), BAD_TILESET_CASES)
def test_bad_tileset_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str, phrase: str
) -> None:
    files = _bad_files(tmp_path)
    arg = str(files[which]) if which in files else which
    if which == "missing.xml":
        arg = str(tmp_path / which)
    code, stdout, err = run(capsys, "generate", "--tileset", arg, "--out", str(tmp_path / "o.png"))
    assert code == 2
    assert err.startswith("worldgen: error: ")
    assert phrase in err
    assert "Traceback" not in err
    assert stdout == ""


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--sample", "{missing}"], "does not exist"),
        (["--sample", "{not_png}"], "not an image"),
        (["--sample", "{dir}"], "is a directory"),
        (["--sample", "terrain"], "is a bundled tileset, not a sample"),
        (["--sample", "flowers", "--N", "1"], "--N 1 is out of range; use 2..5"),
        (["--sample", "flowers", "--N", "6"], "--N 6 is out of range; use 2..5"),
        (["--sample", "flowers", "--symmetry", "3"], "invalid choice: 3"),
        (["--sample", "flowers", "--heuristic", "best"], "invalid choice: 'best'"),
        (["--sample", "flowers", "--subset", "x"], "--subset applies to --tileset only"),
        (["--sample", "flowers", "--size", "2x2"], "cannot hold a 3x3 pattern"),
        (["--sample", "flowers", "--scale", "0"], "--scale 0 is out of range"),
        (["--sample", "flowers", "--size", "1024x1024", "--scale", "16"], "above the limit"),
        (["--tileset", "roads", "--size", "600x600"], "--size or --scale, or write .json"),
        (["--tileset", "roads", "--N", "3", "--ground"], "--N, --ground apply to --sample only"),
        (["--tileset", "terrain", "--subset", "x"], 'unknown subset "x"'),
        (["--tileset", "roads", "--max-attempts", "0"], "--max-attempts 0 is out of range"),
        (["--tileset", "roads", "--max-backtracks", "-1"], "--max-backtracks -1 is out of range"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], phrase: str
) -> None:
    files = _bad_files(tmp_path)
    names = {"missing": str(tmp_path / "missing.png"), "dir": str(tmp_path), "not_png": ""}
    names["not_png"] = str(files["not_png"])
    argv = [a.format(**names) for a in args]
    code, stdout, err = run(capsys, "generate", *argv, "--out", str(tmp_path / "o.png"))
    assert code == 2
    assert phrase in err
    assert "Traceback" not in err
    assert stdout == ""


@pytest.mark.parametrize(
    ("size", "phrase"),
    [
        (f"{MAX_SIDE + 1}x1", f"above the limit of {MAX_SIDE} per side"),
        (f"1x{MAX_SIDE + 1}", f"above the limit of {MAX_SIDE} per side"),
        ("99999999999999999999x2", "above the limit"),
        ("0x5", "must be positive"),
        ("5x0", "must be positive"),
        ("-3x3", "must be positive"),
        ("48", "not of the form WIDTHxHEIGHT"),
        ("48x", "not of the form WIDTHxHEIGHT"),
        ("axb", "not of the form WIDTHxHEIGHT"),
        ("", "not of the form WIDTHxHEIGHT"),
    ],
)
@pytest.mark.parametrize("joined", [False, True])
def test_bad_size_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str, phrase: str, joined: bool
) -> None:
    size_args = [f"--size={size}"] if joined else ["--size", size]
    code, _, err = run(
        capsys, "generate", "--tileset", "roads", *size_args, "--out", str(tmp_path / "o.json")
    )
    assert code == 2
    assert err.startswith("worldgen: error: size ")
    assert phrase in err


def test_bad_demo_size_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--size", "0x4", "--out", str(tmp_path / "d.png"))
    assert code == 2
    assert "must be positive" in err


@pytest.mark.parametrize(
    ("out", "phrase"),
    [
        ("o.gif", "must end in .png or .json"),
        ("o", "has no extension"),
        ("nodir/o.png", "does not exist; create it"),
        ("file.txt/o.png", "is not a folder"),
        ("folder.png", "is a directory"),
    ],
)
def test_bad_output_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str, phrase: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder.png").mkdir()
    for source in (["--tileset", "roads"], ["--sample", "flowers"]):
        code, _, err = run(
            capsys, "generate", *source, "--size", "8x8", "--out", str(tmp_path / out)
        )
        assert code == 2
        assert err.startswith("worldgen: error: ")
        assert phrase in err


def test_json_output_needs_no_tile_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_tileset(tmp_path, CHECKER_TILES, '<neighbor left="A" right="A"/>')
    code, _, _ = run(
        capsys,
        "generate",
        "--tileset",
        str(path),
        "--size",
        "3x3",
        "--out",
        str(tmp_path / "o.json"),
    )
    assert code == 0
    code, _, err = run(
        capsys,
        "generate",
        "--tileset",
        str(path),
        "--size",
        "3x3",
        "--out",
        str(tmp_path / "o.png"),
    )
    assert code == 2
    assert 'missing image file "A.png"' in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "generate", "--size", "4x4", "--out", "o.png")[0] == 2  # no source
    assert run(capsys, "generate", "--tileset", "roads", "--sample", "lakes", "--out", "o")[0] == 2
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys)[0] == 2


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "--version")
    assert code == 0
    assert stdout.startswith("worldgen ")
    code, stdout, _ = run(capsys, "generate", "--help")
    assert code == 0
    assert "--max-backtracks" in stdout


def test_every_command_is_listed_and_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Only the running command's options are added, but every command stays reachable."""
    code, stdout, _ = run(capsys, "--help")
    assert code == 0
    for name in ("generate", "tilesets", "demo", "region", "tile", "serve", "backup", "restore"):
        assert name in stdout
        code, own, _ = run(capsys, name, "--help")
        assert code == 0
        assert own.startswith(f"usage: worldgen {name} ")
    full = build_parser()  # every command's options, as tests and tools use it
    window = ["--x", "0", "--y", "0", "--width", "1", "--height", "1"]
    args = full.parse_args(["region", "--tileset", "terrain", "--seed", "1", *window, "--out", "r"])
    assert (args.command, args.order, args.workers) == ("region", "rowmajor", 1)


# ---------------------------------------------------------------- start-up

# Modules that take tens to hundreds of milliseconds to import; a command loads only those it uses.
HEAVY = ("numpy", "numba", "PIL", "fastapi", "starlette", "pydantic", "redis", "rich", "uvicorn")
SOLVER = ("numpy", "numba", "PIL")


def modules_after(code: str) -> set[str]:
    """The names of the modules a fresh interpreter has imported after running ``code``."""
    probe = (
        "import sys, contextlib, io\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    {code}\n"
        "print(' '.join(sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(proc.stdout.split())


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        ("import worldgen.cli", ()),
        ("from worldgen.cli import main; main(['--version'])", ()),
        ("from worldgen.cli import main; main(['--help'])", ()),
        ("from worldgen.cli import main; main(['serve', '--help'])", ()),
        ("from worldgen.cli import main; main(['restore', '--help'])", ()),
        ("from worldgen.cli import main; main(['generate', '--help'])", SOLVER),
        ("from worldgen.cli import main; main(['tilesets', '--json'])", SOLVER),
    ],
)
def test_commands_import_only_what_they_use(code: str, allowed: tuple[str, ...]) -> None:
    assert modules_after(code) & set(HEAVY) <= set(allowed)


COMMAND_MODULES = {f"worldgen.cli.{m}" for m in ("generate", "world", "serve", "backup", "worker")}


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        ([], set()),
        (["--version"], set()),
        (["--help"], set()),
        (["tile", "--help"], {"world"}),
        (["restore", "--help"], {"backup"}),
        (["tilesets", "--json"], {"generate"}),
    ],
)
def test_only_the_running_commands_module_is_imported(argv: list[str], loaded: set[str]) -> None:
    code = f"from worldgen.cli import main; main({argv!r})" if argv else "import worldgen.cli"
    found = modules_after(code) & COMMAND_MODULES
    assert found == {f"worldgen.cli.{m}" for m in loaded}


def test_every_command_names_a_function_that_adds_its_options() -> None:
    from worldgen.cli import COMMANDS

    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    for command in COMMANDS:
        parser = build_parser(command.name)
        sub = next(a for a in parser._actions if a.dest == "command")
        own = sub.choices[command.name]  # type: ignore[index]
        assert own.get_default("handler") is not None, command.name


def test_main_leaves_no_young_objects_for_the_collector() -> None:
    """After main, what the command created sits in the oldest generation: re-enabled with
    thousands of new objects in the youngest, the collector would walk them all at once (just
    before a command's process exits). Neither command here resumes collecting (start_work), so
    no collection may run until well after main returns."""
    import gc

    collections: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    assert gc.isenabled()
    gc.callbacks.append(record)
    try:
        for argv in (["--version"], ["tilesets", "--json"]):
            main(argv)
            kept = [[k] for k in range(100)]  # allocations that would trigger a pending walk
            assert gc.isenabled()
            assert gc.get_freeze_count() == 0
            assert collections == [], argv
            del kept
    finally:
        gc.callbacks.remove(record)


def test_openblas_runs_one_thread_unless_the_user_says_otherwise() -> None:
    """numpy's OpenBLAS would start a spinning thread per core; worldgen never needs them."""
    probe = (
        "import os, sys, contextlib, io\n"
        "from worldgen.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['tilesets', '--json'])\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for given, expected in ((None, "1"), ("2", "2")):
        if given is not None:
            env["OPENBLAS_NUM_THREADS"] = given
        proc = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
            check=True, env=env,
        )  # fmt: skip
        setting, threads = proc.stdout.split()
        assert setting == expected
        if given is None:
            assert threads == "1"  # numpy is loaded (tilesets reads the samples) with no helper
