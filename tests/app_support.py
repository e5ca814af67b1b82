"""State shared by the Streamlit apps that the tests run and the tests themselves.

AppTest runs an app's script in the test process, re-executing it on every run; the apps
import this module, which keeps its state across their reruns. The `app_state` fixture
resets it for each test.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

# Set when a spinner is on the page (the `app_messages` fixture sets it): a slow cached
# function waits for it, so the test sees the spinner without sleeping.
spinner_shown = threading.Event()
# How many times each cached body ran.
runs: Counter[str] = Counter()
# (name, value) for every value an on_release received.
released: list[tuple[str, Any]] = []
# Cached functions an app hands to the test, by name.
functions: dict[str, Any] = {}


def wait_for_spinner() -> None:
    """What a slow cached body does: returns once the spinner is shown (bounded)."""
    spinner_shown.wait(10)


def reset() -> None:
    spinner_shown.clear()
    runs.clear()
    released.clear()
    functions.clear()
