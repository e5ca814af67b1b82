"""The example app in a real browser (Debian's headless Chromium, driven by selenium):
the slow model load shows Streamlit's spinner with fastcache's text and the elapsed time,
then the result; a reload finds everything cached. `./scripts/test` installs Chromium and
its driver when they are missing.

Set FASTCACHE_SCREENSHOTS to a folder to keep the screenshots there, as
`example-app-loading.png` and `example-app.png` (the README's images are made this way)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from served_app import EXAMPLE_APP, served


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "Chromium and its driver are missing; ./scripts/test installs them "
            "(apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,1300",
    ):
        options.add_argument(argument)
    # The driver from Debian's package: selenium then downloads nothing.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def _quit_if_started(starting: Future) -> None:
    if starting.exception() is None:
        starting.result().quit()  # ends the driver process it started, and the browser


def test_example_app_in_a_headless_browser(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    spinner = (By.CSS_SELECTOR, '[data-testid="stSpinner"]')
    body = (By.TAG_NAME, "body")
    with ThreadPoolExecutor(1) as starter, contextlib.ExitStack() as cleanup:
        starting = starter.submit(_driver)  # Chromium starts while the server does
        cleanup.callback(_quit_if_started, starting)
        # The model loads for 2.5 s: the spinner is on the page from 0.5 s (Streamlit's
        # delay) until then, a wide window for the browser to show it.
        server = cleanup.enter_context(
            served(EXAMPLE_APP, tmp_path, FASTCACHE_EXAMPLE_LOAD_SECONDS="2.5")
        )
        browser = starting.result()
        wait = WebDriverWait(browser, 30, poll_frequency=0.05)
        browser.get(server.url)
        text = wait.until(shown.visibility_of_element_located(spinner)).text
        assert "Loading the model..." in text
        # show_time=True: the browser counts the elapsed time beside the text.
        wait.until(
            lambda b: re.search(
                r"\((0\.[3-9]|[1-9][\d.]*) seconds?\)", b.find_element(*spinner).text
            )
        )
        browser.save_screenshot(str(tmp_path / "example-app-loading.png"))

        wait.until(shown.text_to_be_present_in_element(body, " items"))  # the page's end
        wait.until(shown.invisibility_of_element_located(spinner))
        page = browser.find_element(*body).text
        model = re.search(r"model ([0-9a-f]{8}) \(small\)", page).group(1)
        assert "Index built over 4 rows." in page
        assert "Oslo: 709,000 people" in page
        browser.save_screenshot(str(tmp_path / "example-app.png"))

        browser.refresh()  # a new session: the model comes from the cache at once
        wait.until(shown.text_to_be_present_in_element(body, " items"))
        page = browser.find_element(*body).text
        assert f"model {model} (small)" in page
        assert "Index built over 4 rows." in page  # written by build_index, replayed
        assert browser.find_elements(*spinner) == []
        assert server.log().count("loaded model") == 1
    keep = os.environ.get("FASTCACHE_SCREENSHOTS")
    if keep:
        for name in ("example-app-loading.png", "example-app.png"):
            shutil.copyfile(tmp_path / name, os.path.join(keep, name))
