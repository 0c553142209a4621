"""The browser fixtures of ``tests/web/browser`` (a real ``worldgen serve``, which starts its
own job worker, and Chromium), for the upload test."""

from tests.web.browser.conftest import browser, browser_page, playwright, server

__all__ = ["browser", "browser_page", "playwright", "server"]
