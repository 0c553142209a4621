"""Static rules of the front end's modules (no browser needed): one module talks HTTP, one module
builds elements, no module builds HTML from strings, and the page data carries the API's limits
instead of copies in the scripts."""

from __future__ import annotations

import re
from pathlib import Path

from worldgen.web.app import STATIC_DIR

JS = STATIC_DIR / "js"


def _sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(JS.glob("*.js"))}


def test_only_api_js_calls_fetch() -> None:
    callers = [name for name, text in _sources().items() if re.search(r"\bfetch\(", text)]
    assert callers == ["api.js"]


def test_one_element_helper() -> None:
    helpers = [name for name, text in _sources().items() if re.search(r"function el\(", text)]
    assert helpers == ["dom.js"]
    creators = [n for n, t in _sources().items() if "document.createElement(" in t]
    assert creators == ["dom.js"]


def test_no_html_from_strings() -> None:
    sink = re.compile(r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML\(|document\.write")
    for name, text in _sources().items():
        assert not sink.search(text), f"{name} builds HTML from a string"


def test_limits_come_from_the_page_data() -> None:
    for name, text in _sources().items():
        for number in ("1024", "4096", "2 \\*\\* 31", "-10"):
            assert not re.search(rf"=\s*{number}\b", text), f"{name} hard-codes {number}"


def test_modules_are_small() -> None:
    for path in JS.glob("*.js"):
        lines = path.read_text(encoding="utf-8").count("\n")
        assert lines <= 400, f"{Path(path).name} has {lines} lines"
