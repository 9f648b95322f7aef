"""What the page's browser tests share: finding headless Chromium, and driving and reading the page
(pointer strokes, the answer, the network log). The fixtures around them are in conftest.py."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[3]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Seconds for one answer to appear: generous for a busy 2-core machine, never hit when working.
ANSWER_TIMEOUT = 30


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    debian = Path("/usr/bin/chromedriver")
    driver = shutil.which("chromedriver") or (str(debian) if debian.exists() else None)
    if not chromium or not driver:
        msg = ("headless Chromium not found (need `chromium` and `chromedriver` on PATH): install Debian's "
               "packages with `bash tools/install-browser.sh` as root (make test does it)")
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return chromium, driver


# ---- helpers --------------------------------------------------------------------------------------
# The page's elements by id, for the scripts below (window.status is a browser global, hence no bare ids).
ELEMENTS = ("const [pad, photo, prediction, confidence, status, error, seen] = "
            "['pad', 'photo', 'prediction', 'confidence', 'status', 'error', 'seen']"
            ".map(id => document.getElementById(id));")


def js(driver, script: str):
    return driver.execute_script(ELEMENTS + script)


def wait_for(driver, script: str, timeout: float = ANSWER_TIMEOUT, what: str = "condition"):
    """Poll a JS expression until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = js(driver, "return " + script)
        if value:
            return value
        if time.monotonic() > deadline:
            state = js(driver, "return [prediction.dataset.state, status.textContent, error.textContent]")
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; page state {state}")
        time.sleep(0.05)


INK_ON_PAD = ("const d = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;"
              "let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] < 128; return n;")
# The answer to the newest drawing: data-latest counts drawings (strokes, photos, clears), data-drawing
# is the one data-class answers.
ANSWER = ("prediction.dataset.state === 'done' && prediction.dataset.drawing === prediction.dataset.latest"
          " && prediction.dataset.class")
LATEST = "return Number(prediction.dataset.latest || 0)"
STALE = ("return prediction.hasAttribute('data-class')"
         " && prediction.dataset.drawing !== prediction.dataset.latest")


def settle(driver):
    """Wait until the bars' transitions are over, so a screenshot shows the final picture."""
    wait_for(driver, "document.getAnimations().length === 0", timeout=5, what="animations to end")


def pad_box(driver):
    """The pad's drawing area in viewport pixels: (left, top, width, height)."""
    return js(
        driver, "const r = pad.getBoundingClientRect();"
        "return [r.left + pad.clientLeft, r.top + pad.clientTop, pad.clientWidth, pad.clientHeight];")


def stroke(driver, points, kind: str):
    """One pen-down-move-up gesture through ``points`` (pad units), as W3C pointer actions of ``kind``."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    left, top, width, height = pad_box(driver)
    kinds = {"mouse": interaction.POINTER_MOUSE, "touch": interaction.POINTER_TOUCH,
             "pen": interaction.POINTER_PEN}
    # ~8 ms per move: a quick but human hand (a stroke of a digit takes about half a second).
    actions = ActionBuilder(driver, mouse=PointerInput(kinds[kind], kind), duration=8)
    pointer = actions.pointer_action
    xy = [(round(left + x * width), round(top + y * height)) for x, y in points]
    pointer.move_to_location(*xy[0])
    pointer.pointer_down()
    for x, y in xy[1:]:
        pointer.move_to_location(x, y)
    pointer.pointer_up()
    actions.perform()


def answer(driver) -> dict:
    return js(
        driver, "return {cls: prediction.dataset.class, drawing: prediction.dataset.drawing,"
        " confidence: confidence.textContent, status: status.textContent,"
        " bars: Array.from(document.querySelectorAll('#bars .fill'))"
        ".map(e => parseFloat(e.style.width) || 0),"
        " seen: seen.hidden ? null : [seen.naturalWidth, seen.naturalHeight, seen.complete],"
        " warnings: Array.from(document.querySelectorAll('#warnings li')).map(e => e.textContent)}")


def network_events(driver, seen: list) -> list:
    """The CDP network events logged since the last call, also appended to ``seen`` (reading drains
    the log)."""
    new = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    new = [m for m in new if m.get("method", "").startswith("Network.")]
    seen.extend(new)
    return new


def check_same_origin(driver, base: str, events: list, expected_errors=()):
    """Every request the page made went to the service's own origin (blob: URLs of that origin included),
    and the console shows no error or CSP violation beyond the HTTP statuses in ``expected_errors``."""
    origin = urlsplit(base).netloc
    entries = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    foreign = [u for u in entries if urlsplit(u).netloc != origin]
    network_events(driver, events)
    urls = [m["params"]["request"]["url"] for m in events if m["method"] == "Network.requestWillBeSent"]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "blob":
            parts = urlsplit(parts.path)
        if parts.scheme == "data" or parts.netloc != origin:
            foreign.append(url)
    assert urls, "the browser's network log is empty: the origin check would prove nothing"
    assert not foreign, f"the page loaded from another origin: {foreign}"
    problems = [e for e in driver.get_log("browser")
                if (e["level"] == "SEVERE" or "Content Security Policy" in e.get("message", ""))
                and not any(f"status of {code} " in e["message"] for code in expected_errors)]
    assert not problems, f"console errors or CSP violations: {problems}"


# ---- the test -------------------------------------------------------------------------------------
