"""Headless Chromium for browser tests: Debian's `chromium` and `chromium-driver`, driven by
Selenium at their fixed paths, so Selenium Manager never looks for (or downloads) a browser.

`make test` / `.ci/run` install the two packages when missing; elsewhere the browser tests skip,
saying what to install. Screenshots go to the test's tmp dir, and to `$NEURO_TEST_ARTIFACTS`
too when it is set (`make test` sets it to ./test-artifacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS_ENV = "NEURO_TEST_ARTIFACTS"
WINDOW = "1280,2400"  # tall enough that a screenshot shows every section


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Any]:
    """A Chrome WebDriver on a fresh profile under ``profile``, quit on exit."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver "
                    "(make test installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", f"--window-size={WINDOW}", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    """A PNG of the page in ``tmp_path``, copied to `$NEURO_TEST_ARTIFACTS` when set."""
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    folder = os.environ.get(ARTIFACTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / name)
    return shot
