"""The console in a real browser (headless Chromium, tests/console/browser.py): sign in, find a
held job, approve it with a reason, see it finish and the audit event with the operator's name;
a POST without the form token refused; signed out, a page sends you to the sign-in page.

``test_screenshots`` also takes the README's pictures: ``make screenshots`` runs it with
``SCIM_BRIDGE_SCREENSHOTS=docs`` and it writes docs/console-overview.png and docs/console-job.png.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from scim_bridge.sandbox.server import ServerThread
from tests.console.browser import chromium
from tests.console.conftest import Console

UI = "/admin/ui"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def served(console: Console) -> Iterator[str]:
    with ServerThread(console.bridge.app) as server:
        yield server.url.rstrip("/")


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def sign_in(browser: webdriver.Chrome, token: str) -> None:
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)  # keyboard only
    wait_for(lambda: browser.find_elements(By.ID, "who"), "signed in")


def wait_for(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout_s}s: {what}")
        time.sleep(0.2)


def test_an_operator_approves_a_held_job_and_sees_it_finish_and_audited(
    console: Console, served: str, browser: webdriver.Chrome
) -> None:
    job_id = console.held_job()

    browser.get(f"{served}{UI}/")
    assert f"{UI}/sign-in" in browser.current_url  # signed out: sent to sign in
    sign_in(browser, console.alice)
    assert browser.current_url.rstrip("/").endswith(UI)

    held = browser.find_element(By.ID, "held-h").find_element(By.XPATH, "..")
    held.find_element(By.LINK_TEXT, job_id).click()
    assert browser.find_element(By.ID, "job-state").text == "held"

    form = browser.find_element(By.ID, "act-approve")
    form.find_element(By.NAME, "reason").send_keys("Change 4711: leaver confirmed by HR")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert browser.find_element(By.ID, "confirm-reason").text == (
        "Change 4711: leaver confirmed by HR"
    )
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: "done=approve" in browser.current_url, "back on the job page")

    def finished() -> bool:
        browser.refresh()
        return browser.find_element(By.ID, "job-state").text == "done"

    wait_for(finished, f"job {job_id} done")
    assert "operator:alice" in browser.page_source  # approved by

    browser.get(f"{served}{UI}/audit?tag=deprovision:job:approved")
    row = browser.find_element(By.CSS_SELECTOR, "table.events tbody tr")
    assert row.find_element(By.CSS_SELECTOR, "td.actor").text == "operator:alice"
    assert "Change 4711: leaver confirmed by HR" in row.text
    assert job_id[:8] in row.text


def test_a_post_without_the_form_token_is_refused_and_signed_out_pages_redirect(
    console: Console, served: str, browser: webdriver.Chrome
) -> None:
    job_id = console.held_job()
    browser.get(f"{served}{UI}/jobs/{job_id}")
    assert f"{UI}/sign-in" in browser.current_url
    sign_in(browser, console.alice)
    assert browser.current_url.endswith(f"{UI}/jobs/{job_id}")  # back where it was going

    # The browser's own session cookie goes along (same origin), the form token does not.
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const body = new URLSearchParams({action: "approve", reason: "x", confirmed: "yes"});
        fetch(arguments[0], {method: "POST", body, credentials: "same-origin"})
          .then(r => done(r.status), e => done(String(e)));
        """,
        f"{served}{UI}/jobs/{job_id}/act",
    )
    assert status == 403
    browser.refresh()
    assert browser.find_element(By.ID, "job-state").text == "held"

    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_for(lambda: f"{UI}/sign-in" in browser.current_url, "signed out")
    browser.get(f"{served}{UI}/audit")
    assert f"{UI}/sign-in?next=" in browser.current_url
    assert browser.title.startswith("Sign in")


def test_screenshots(
    console: Console, served: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """The README's pictures: the overview with held jobs, and a job page after an approval."""
    held = [console.held_job() for _ in range(3)]
    out = Path(os.environ.get("SCIM_BRIDGE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    browser.get(f"{served}{UI}/")
    sign_in(browser, console.alice)
    overview = out / "console-overview.png"
    browser.save_screenshot(str(overview))

    browser.get(f"{served}{UI}/jobs/{held[0]}")
    form = browser.find_element(By.ID, "act-approve")
    form.find_element(By.NAME, "reason").send_keys("Leaver confirmed by HR (ticket 4711)")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    browser.find_element(By.ID, "confirm").click()
    wait_for(lambda: "done=approve" in browser.current_url, "back on the job page")

    def finished() -> bool:
        browser.refresh()
        return browser.find_element(By.ID, "job-state").text == "done"

    wait_for(finished, "the approved job done")
    job = out / "console-job.png"
    browser.save_screenshot(str(job))
    for picture in (overview, job):
        assert picture.read_bytes().startswith(PNG)
        assert picture.stat().st_size > 10_000
