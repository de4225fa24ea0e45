"""Headless Chromium for the browser tests (selenium + Debian's chromium and
chromium-driver), the daemon they talk to, and small helpers.

The browser runs with a fresh profile and every background service off (the network is
closed: nothing may call out). Screenshots go to the test's temp dir; each test looks at
its page through the DOM, the screenshots are for people.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1200,900")
WAIT = 15  # seconds a condition may take on a busy machine (a bound, not a margin)


def make_browser(width: int = 1200, height: int = 900):
    """A headless Chromium session, or pytest.skip saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            pytest.skip("%s not found: apt-get install -y chromium chromium-driver "
                        "(.ci/run does)" % package)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tempfile.mkdtemp(prefix="gamed-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--user-data-dir=" + profile)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(width, height)
    driver.profile_dir = profile
    return driver


def close_browser(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.profile_dir, ignore_errors=True)


def wait_for(driver, condition, message=""):
    """Wait until condition(driver) is true; message (or message()) says what did not
    happen. WAIT is a bound for a busy machine, not a margin the pass depends on."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition)
    except TimeoutException:
        raise AssertionError(message() if callable(message) else message) from None


def shot(driver, folder, name: str, full_page: bool = True) -> str:
    """Save a PNG of the page (the whole page's height when full_page)."""
    path = os.path.join(str(folder), name + ".png")
    if full_page:
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
        width = driver.get_window_size()["width"]
        driver.set_window_size(width, min(max(height + 140, 600), 4000))
    driver.save_screenshot(path)
    return path


def console_errors(driver) -> list:
    try:
        return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    except Exception:  # noqa: BLE001 - not every driver keeps the log
        return []
