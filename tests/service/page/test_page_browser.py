"""The drawing page in a real headless Chromium against the real service under the repo's gunicorn config.

Draws the digits 0-9 with pointer strokes as a person would (mouse, finger and pen), reads
``#prediction[data-class]`` after each stroke, uploads a photo-like JPEG and two bad files through the
file input, and checks that the page fetched nothing from another origin and hit no CSP violation.
Screenshots land in ``artifacts/page/`` (or ``$MNISTLITE_ARTIFACTS/page``); the path is printed.

Needs Debian's ``chromium`` and ``chromium-driver`` (``tools/install-browser.sh``, run by ``make test``).
Selenium is given both paths, so Selenium Manager never looks for (or downloads) a browser.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_kit import (
    ANSWER,
    INK_ON_PAD,
    LATEST,
    STALE,
    answer,
    check_same_origin,
    js,
    network_events,
    settle,
    stroke,
    wait_for,
)

# Each pointer kind draws some digits: a mouse, a finger on a touch screen and a pen.
POINTER_OF = {0: "mouse", 3: "mouse", 6: "mouse", 9: "mouse", 1: "touch", 4: "touch", 7: "touch",
              2: "pen", 5: "pen", 8: "pen"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page_model_path(reference_model, mnist, tmp_path_factory) -> Path:
    """The full-MNIST reference model with its test accuracy recorded, as scripts/train.py records it."""
    import mnistlite as ml

    _, (x_test, y_test) = mnist
    accuracy = float((reference_model.predict(x_test) == y_test).mean())
    path = tmp_path_factory.mktemp("page-model") / "reference.npz"
    ml.save(reference_model, path, metadata={"metrics": {"test_accuracy": accuracy}})
    return path


@pytest.fixture(scope="module")
def server(gunicorn, page_model_path) -> str:
    """The service the production way: gunicorn with the repo's config and the full-MNIST reference model.

    A 1 MiB body limit (the default admits 16 MiB) lets the test drive the page's shrink-to-fit path
    and a 413 with files of a few MB."""
    return gunicorn(page_model_path, MNISTLITE_MAX_BODY_BYTES=str(1 << 20)).url


def test_page_reads_drawn_digits_and_photos(browser_binaries, browser, server, artifacts, strokes, photo_jpeg,
                                            tmp_path, capsys):
    driver = browser
    with capsys.disabled():
        print(f"\npage screenshots go to {artifacts}")
    driver.get(server + "/")
    assert driver.title.startswith("mnistlite")
    wait_for(driver, "document.getElementById('model-info').textContent.includes('test accuracy')",
             what="the footer's model line")
    footer = driver.execute_script("return document.getElementById('model-info').textContent")
    assert "%" in footer and "not recorded" not in footer, footer
    assert js(driver, "return getComputedStyle(pad).touchAction") == "none"

    # Every answer the page ever shows, in order: a drawing number must never go back (no stale answer).
    js(driver,
       "window.__answers = [];"
        "new MutationObserver(() => { if (prediction.dataset.class !== undefined)"
        "  window.__answers.push([Number(prediction.dataset.drawing), prediction.dataset.class]); })"
        ".observe(prediction, {attributes: true, attributeFilter: ['data-class']});")

    results = {}
    for digit in range(10):
        driver.find_element("id", "clear").click()
        assert js(driver, "return prediction.hasAttribute('data-class')") is False
        drawn = strokes(digit)
        kind = POINTER_OF[digit]
        for i, points in enumerate(drawn):
            before = js(driver, LATEST)
            stroke(driver, points, kind)
            # Each stroke is a new drawing, and nothing shown answers an older one.
            assert js(driver, LATEST) == before + 1 and not js(driver, STALE)
            if i < len(drawn) - 1 and digit % 2 == 0:
                # A person who pauses between strokes sees the answer to the half-drawn digit.
                wait_for(driver, ANSWER, what=f"an answer after stroke {i + 1} of {digit}")
            # Otherwise the next stroke starts at once and supersedes the request in flight.
        got = int(wait_for(driver, ANSWER, what=f"the answer for {digit}"))
        results[digit] = (got, answer(driver), kind)
        settle(driver)
        driver.save_screenshot(str(artifacts / f"digit-{digit}.png"))

    table = "\n".join(f"  drew {d} with a {k:5s} -> read {g}  ({a['confidence']}; {a['status']})"
                      for d, (g, a, k) in results.items())
    print(f"\ndrawn digits:\n{table}")
    right = sum(d == g for d, (g, _, _) in results.items())
    assert right >= 9, f"only {right}/10 drawn digits read right:\n{table}"
    for d, (_, a, _) in results.items():
        assert a["seen"] and a["seen"][:2] == [28, 28], (d, a)       # the 28x28 view is shown
        assert max(a["bars"]) > 0 and len(a["bars"]) == 10, (d, a)   # and the ten bars
    shown = driver.execute_script("return window.__answers")
    numbers = [n for n, _ in shown]
    assert numbers == sorted(numbers), f"an answer to an older drawing was shown after a newer one: {shown}"

    # A slow network (3 s of latency): the second stroke of a 4 ends while the first one's answer is still
    # on its way. That request is cancelled, and the only answer shown is the whole 4's.
    events: list = []
    network_events(driver, events)
    driver.find_element("id", "clear").click()
    driver.execute_cdp_cmd("Network.enable", {})
    unthrottled = {"offline": False, "downloadThroughput": -1, "uploadThroughput": -1}
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {**unthrottled, "latency": 3000})
    mark = len(shown)
    try:
        first, second = strokes(4)
        stroke(driver, first, "touch")
        stroke(driver, second, "touch")
        assert int(wait_for(driver, ANSWER, what="the answer for a 4 on a slow network")) == 4
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {**unthrottled, "latency": 0})
    latest = js(driver, LATEST)
    after = driver.execute_script("return window.__answers")[mark:]
    assert after == [[latest, "4"]], f"answers shown for the slow 4: {after} (newest drawing {latest})"
    sent = {m["params"]["requestId"] for m in network_events(driver, events)
            if m["method"] == "Network.requestWillBeSent"
            and urlsplit(m["params"]["request"]["url"]).path == "/predict"}
    cancelled = [m for m in events if m["method"] == "Network.loadingFailed"
                 and m["params"]["requestId"] in sent and m["params"].get("canceled")]
    assert len(sent) == 2 and len(cancelled) == 1, (sent, cancelled)

    # The keyboard: Esc on the pad clears it, and Tab walks through the controls that are on screen.
    from selenium.webdriver.common.keys import Keys

    assert js(driver, INK_ON_PAD) > 0
    js(driver, "pad.focus()")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert js(driver, "return prediction.dataset.state") == "empty" and js(driver, INK_ON_PAD) == 0
    visited = []
    for _ in range(2):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        visited.append(driver.switch_to.active_element.get_attribute("id"))
    assert visited == ["clear", "file"], visited  # no stop on the camera input a desktop does not show

    # A photo: shown at once, then its 28x28 view, bars and an answer.
    jpeg = tmp_path / "photo-of-a-3.jpg"
    jpeg.write_bytes(photo_jpeg(3))
    driver.find_element("id", "file").send_keys(str(jpeg))
    wait_for(driver, "!photo.hidden && photo.complete && photo.naturalWidth === 1200",
             what="the photo preview")
    got = int(wait_for(driver, ANSWER, what="the photo's answer"))
    a = answer(driver)
    assert a["seen"] and a["seen"][:2] == [28, 28] and max(a["bars"]) > 0, a
    print(f"photo of a 3 -> read {got} ({a['confidence']}); warnings: {a['warnings']}")
    assert got == 3, f"the photo of a 3 was read as {got}"
    settle(driver)
    driver.save_screenshot(str(artifacts / "photo.png"))

    # Bad files get the service's own message, not a made-up one.
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image\n")
    driver.find_element("id", "file").send_keys(str(text))
    message = wait_for(driver, "!error.hidden && error.textContent", what="the error for a text file")
    assert "Invalid image (400)" in message, message
    assert js(driver, "return prediction.hasAttribute('data-class')") is False
    req = urllib.request.Request(server + "/predict", data=text.read_bytes(), method="POST",
                                 headers={"Content-Type": "image/png"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert json.loads(e.value.read())["description"] in message
    settle(driver)
    driver.save_screenshot(str(artifacts / "error-400.png"))

    # Over the byte limit: a phone-sized photo is reduced in the page to fit; what the browser cannot
    # read goes as it is, and the service's 413 message is shown.
    big = tmp_path / "phone-photo.jpg"
    big.write_bytes(photo_jpeg(7, size=(3000, 2250), quality=95))
    with urllib.request.urlopen(server + "/v1/model", timeout=10) as r:
        limit = json.load(r)["input"]["image"]["max_body_bytes"]
    assert big.stat().st_size > limit
    driver.find_element("id", "file").send_keys(str(big))
    assert int(wait_for(driver, ANSWER, what="the answer for a photo over the byte limit")) == 7
    note = js(driver, "return status.textContent")
    assert "3000\u00d72250" in note and "reduced to 2048\u00d71536" in note, note
    blob = tmp_path / "raw.jpg"
    blob.write_bytes(b"\xff\xd8\xff" + os.urandom(limit + 1000))  # a "JPEG" no browser can decode
    driver.find_element("id", "file").send_keys(str(blob))
    message = wait_for(driver, "!error.hidden && error.textContent",
                       what="the error for a body over the limit")
    assert "too large (413)" in message and f"the limit is {limit} bytes" in message, message

    check_same_origin(driver, server, events, expected_errors=(400, 413))  # the bad files' answers

    # Phone, tablet, desktop: the pad fits the screen, nothing scrolls sideways.
    driver.find_element("id", "clear").click()
    stroke(driver, strokes(7)[0], "touch")
    wait_for(driver, ANSWER, what="the answer for the README's 7")
    for name, width, height, mobile in (("phone", 390, 844, True), ("tablet", 820, 1180, True),
                                        ("desktop", 1280, 900, False)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": mobile, "maxTouchPoints": 5})
        time.sleep(0.3)  # a layout pass and the pad's redraw at its new size
        fit = js(
            driver, "const r = pad.getBoundingClientRect();"
            "return [document.documentElement.scrollWidth, r.left, r.right, r.width, r.bottom,"
            " pad.width - pad.clientWidth,"
            " getComputedStyle(document.querySelector('label[for=camera]')).display];")
        scroll_width, pad_left, pad_right, pad_width, bottom, backing_minus_css, camera = fit
        # Measured against the device's width: a mobile browser widens its layout to fit overflowing content.
        assert scroll_width <= width and pad_left >= 0 and pad_right <= width, (name, fit)
        # Big, and all of it on screen; redrawn sharp at its new size (one pixel per CSS pixel here).
        assert pad_width >= min(280, width - 64) and bottom <= height, (name, fit)
        assert backing_minus_css == 0, (name, fit)
        assert (camera != "none") == mobile, (name, fit)  # "Take a photo" on touch screens only
        settle(driver)
        driver.save_screenshot(str(artifacts / f"page-{name}.png"))
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with capsys.disabled():  # shown by a plain `pytest -q` too, not only on failure
        print(f"\npage screenshots: {artifacts}  (drawn digits read right: {right}/10)")
