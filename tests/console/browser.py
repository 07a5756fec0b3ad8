"""Headless Chromium from Debian's packages, driven by Selenium.

Selenium is pointed at ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` explicitly, so that
Selenium Manager has nothing to resolve and downloads nothing (``SE_OFFLINE`` says so too).
A missing browser fails the test, never skips it: ``make test`` installs it
(``scripts/ensure-browser``); outside it, run that script as root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1366, 900)  # a laptop screen

FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs the suite as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: run `bash scripts/ensure-browser` as root "
            "(make test does), which installs Debian's chromium and chromium-driver"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or driver
    profile = tempfile.mkdtemp(prefix="scimb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        # A click that submits a form returns before the next page is there: element lookups
        # wait for it (up to this long) rather than fail on a loaded machine.
        driver.implicitly_wait(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
