"""The command line's input checks and output files: sizes, output paths, PNG and JSON writing.

Every check raises :class:`~worldgen.errors.InputError` with a message that says what is wrong
and how to fix it; :func:`worldgen.cli.main` turns those into exit code 2. The limits are
documented in ``docs/cli.md``. numpy and Pillow are imported by :func:`write_png` only, so that
the checks cost nothing at start-up.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from worldgen.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from worldgen.engine.solver import SolveResult
    from worldgen.settings import Settings

MAX_SIDE: Final = 1024
"""Largest output side for ``generate`` (tiles or pixels), so at most 1,048,576 cells."""
MAX_SCALE: Final = 16
"""Largest ``--scale`` factor."""
MAX_PNG_PIXELS: Final = 8192 * 8192
"""Largest PNG ``generate`` writes (pixels after scaling; 256 MiB as RGBA in memory)."""
MAX_ATTEMPTS: Final = 1000
MAX_BACKTRACKS: Final = 1_000_000

_SIZE = re.compile(r"\s*([+-]?[0-9]+)\s*[xX×]\s*([+-]?[0-9]+)\s*")


def parse_size(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` as ``(width, height)``, each side in ``1..MAX_SIDE``."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InputError(
            f"size {text!r} is not of the form WIDTHxHEIGHT; write it like --size 48x48"
        )
    sides = []
    for digits in match.groups():
        if len(digits.lstrip("+-")) > 9:  # no need to parse an absurdly long number
            sides.append(MAX_SIDE + 1 if not digits.startswith("-") else -1)
        else:
            sides.append(int(digits))
    width, height = sides
    if width < 1 or height < 1:
        raise InputError(
            f"size {text!r} must be positive on both sides; write it like --size 48x48 "
            f"(each side 1..{MAX_SIDE})"
        )
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InputError(
            f"size {text!r} is above the limit of {MAX_SIDE} per side; "
            f"use at most {MAX_SIDE}x{MAX_SIDE}"
        )
    return width, height


def check_range(option: str, value: int, low: int, high: int, hint: str = "") -> int:
    """``value`` if ``low <= value <= high``, else an InputError naming the option."""
    if not low <= value <= high:
        extra = f" ({hint})" if hint else ""
        raise InputError(f"{option} {value} is out of range; use {low}..{high}{extra}")
    return value


def check_output(text: str, suffixes: tuple[str, ...], what: str) -> Path:
    """The output path, after checking its extension and that its folder can be written to."""
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        wanted = " or ".join(suffixes)
        raise InputError(
            f"output {text!r} has {'extension ' + repr(path.suffix) if suffix else 'no extension'}"
            f"; {what} output must end in {wanted}"
        )
    if path.is_dir():
        raise InputError(f"output {text!r} is a directory; give a file name ending in {suffix}")
    parent = path.parent
    if not parent.exists():
        raise InputError(
            f"cannot write {text!r}: folder {str(parent)!r} does not exist; create it or choose "
            "another --out"
        )
    if not parent.is_dir():
        raise InputError(
            f"cannot write {text!r}: {str(parent)!r} is not a folder; choose another --out"
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"cannot write {text!r}: permission denied; choose a writable --out")
    return path


def check_png_size(width_px: int, height_px: int, scale: int) -> None:
    """Refuse a PNG larger than MAX_PNG_PIXELS after scaling, before any work is done."""
    check_range("--scale", scale, 1, MAX_SCALE)
    w, h = width_px * scale, height_px * scale
    if w * h > MAX_PNG_PIXELS:
        raise InputError(
            f"the PNG would be {w}x{h} px, above the limit of {MAX_PNG_PIXELS:,} pixels; "
            "use a smaller --size or --scale, or write .json"
        )


def write_png(path: Path, image: npt.NDArray[np.uint8], scale: int) -> None:
    """Save an RGBA image, each pixel drawn as a ``scale × scale`` block."""
    import numpy as np
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if scale != 1:
        size = (picture.width * scale, picture.height * scale)
        picture = picture.resize(size, Image.Resampling.NEAREST)
    try:
        # the format from the name (callers pass a .png path): given as format="PNG", Pillow first
        # imports its BMP, GIF, JPEG and PPM plugins (~5-8 ms of a process)
        picture.save(path, format=None if path.suffix.lower() == ".png" else "PNG")
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r} ({exc}); choose another --out") from None


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Save a JSON document (compact: outputs can hold a million cells)."""
    try:
        path.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r} ({exc}); choose another --out") from None


def failure_message(result: SolveResult, ground: bool) -> str:
    """Why a solve failed and what to try instead, for exit code 1."""
    if result.reason == "constraints":
        cause = "the rules and --ground" if ground else "the rules"
        return (
            f"no solution: {cause} leave no possible output of this size, so another seed will "
            "not help; check the tileset's neighbours, change --size or --periodic"
            + (", or drop --ground" if ground else "")
        )
    why = (
        "the observation budget ran out"
        if result.reason == "budget"
        else f"every attempt hit a contradiction ({result.attempts} attempt(s), "
        f"{result.backtracks} backtrack(s))"
    )
    return (
        f"no solution found within the budget: {why}; try another --seed, or raise "
        "--max-attempts / --max-backtracks"
    )


def error(message: str) -> None:
    """Print ``worldgen: error: <message>`` on stderr: the one shape of every error line."""
    print(f"worldgen: error: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """Print ``worldgen: warning: <message>`` on stderr (the command goes on)."""
    print(f"worldgen: warning: {message}", file=sys.stderr)


def settings_from_flags(flags: dict[str, Any]) -> Settings:
    """The app's settings from the environment, overridden by the flags that were given (not
    None); invalid ones are an :class:`InputError` naming every problem (exit code 2)."""
    from pydantic import ValidationError

    from worldgen.settings import Settings

    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"invalid settings: {problems}") from None
