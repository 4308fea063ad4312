"""The dashboard in a real browser: headless Chromium opens a devnet node's /ui, logs in with the
RPC cookie, and sees a block, a job and a clearing-price point appear as the market works (a
mining client with alice's agent, and bob's worker daemon). The session cookie is out of the
page's reach, and the page never trips its own Content-Security-Policy.

A screenshot is saved as `dashboard.png` in the test's tmp dir, and in ./test-artifacts/ under
`make test` (tests/support/browser.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tests.support.browser import headless_chromium, save_screenshot
from tests.support.market_daemons import market, submit, worker_flags

log = logging.getLogger("tests.ui_browser")
SEEN_TIMEOUT = 30.0  # a poll is every 2 s: this bounds a wait for something already on chain
MARKET_TIMEOUT = 180.0  # bids, the award and its block, on a loaded 2-core machine


def test_the_dashboard_shows_blocks_jobs_and_prices_as_they_happen(daemons: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    client, _ = market(daemons, {"bob": worker_flags("bob", 50)})
    with headless_chromium(tmp_path / "chromium") as browser:
        try:
            browser.get(client.rpc_url.rstrip("/") + "/ui")
            field = WebDriverWait(browser, SEEN_TIMEOUT).until(seen.presence_of_element_located((By.ID, "cookie")))
            assert browser.current_url.endswith("/ui/login")  # no session: sent to the login form
            field.send_keys("__cookie__:" + "00" * 32)
            browser.find_element(By.ID, "login").click()
            error = WebDriverWait(browser, SEEN_TIMEOUT).until(seen.presence_of_element_located((By.ID, "login-error")))
            assert "wrong cookie" in error.text
            browser.find_element(By.ID, "cookie").send_keys(client.cookie())
            browser.find_element(By.ID, "login").click()
            log.info("logged in; waiting for a block")

            def newest_block(driver: Any) -> int:
                cells = driver.find_elements(By.CSS_SELECTOR, "#blocks tbody tr:first-child td:first-child")
                return int(cells[0].text) if cells else 0

            WebDriverWait(browser, SEEN_TIMEOUT).until(lambda d: newest_block(d) >= 1)
            first = newest_block(browser)
            WebDriverWait(browser, SEEN_TIMEOUT).until(lambda d: newest_block(d) > first)  # it updates live

            session = [c for c in browser.get_cookies() if c["name"].startswith("neuro_ui_")]
            assert len(session) == 1 and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
            assert browser.execute_script("return document.cookie") == ""  # no script can read it

            job = submit(client, shards=1)  # bob, the one worker, takes one shard at a time
            log.info("job %s posted; waiting for it and its price on the page", job[:12])
            WebDriverWait(browser, MARKET_TIMEOUT).until(
                lambda d: job[:12] in d.find_element(By.ID, "jobs").text)
            WebDriverWait(browser, MARKET_TIMEOUT).until(
                seen.presence_of_element_located((By.CSS_SELECTOR, f'circle.price-point[data-job="{job}"]')))
            assert job[:12] in browser.find_element(By.ID, "own-jobs").text  # this node's agent posted it
            violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
            assert not violations, violations
        finally:
            shot = save_screenshot(browser, tmp_path, "dashboard.png")
            log.info("screenshot: %s", shot)
