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
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[3]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Seconds for one answer to appear: generous for a busy 2-core machine, never hit when working.
ANSWER_TIMEOUT = 30
# Each pointer kind draws some digits: a mouse, a finger on a touch screen and a pen.
POINTER_OF = {0: "mouse", 3: "mouse", 6: "mouse", 9: "mouse", 1: "touch", 4: "touch", 7: "touch",
              2: "pen", 5: "pen", 8: "pen"}

pytestmark = pytest.mark.slow


def _browser_paths() -> tuple[str, str]:
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


@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = Path(os.environ.get("MNISTLITE_ARTIFACTS") or ROOT / "artifacts")
    out = base / "page"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    return out


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


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver); session-scoped so a missing browser skips (fails in CI) before any
    training."""
    return _browser_paths()


@pytest.fixture(scope="module")
def browser(browser_binaries):
    chromium, chromedriver = browser_binaries
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--window-size=1280,1000",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


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


# ---- abstentions ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def abstaining_servers(gunicorn, reference_model, tmp_path_factory) -> dict:
    """Two services whose model copies always abstain, one way each: "unsure" (at temperature 3 no answer
    reaches a confidence of 1, and the top two always hold enough) and "not_a_digit" (no logit reaches
    1e6). The page's rendering is tested here; the decision itself in tests/service/test_honest.py."""
    import mnistlite as ml
    from mnistlite.nn.calibration import Calibration

    folder = tmp_path_factory.mktemp("abstaining")
    path = ml.save(reference_model, folder / "base.npz")
    rules = {"unsure": Calibration(3.0, min_confidence=1.0, min_pair=0.0),
             "not_a_digit": Calibration(1.0, min_confidence=0.0, min_pair=0.0, min_logit=1e6)}
    servers = {}
    for reason, rule in rules.items():
        model = ml.load(path)
        model.calibration = rule
        servers[reason] = gunicorn(ml.save(model, folder / f"{reason}.npz"), WEB_CONCURRENCY="1").url
    return servers


def test_page_says_not_sure_and_not_a_digit(browser_binaries, browser, abstaining_servers, artifacts,
                                            strokes):
    """Instead of a big digit the page says "Not sure: a or b?" (the two likeliest digits) or "That
    doesn't look like a digit", and keeps the bars; a new drawing clears it."""
    driver = browser
    for reason, base in abstaining_servers.items():
        driver.get(base + "/")
        drawn = strokes(4 if reason == "unsure" else 7)
        for points in drawn:
            stroke(driver, points, "mouse")
        wait_for(driver, ANSWER, what=f"the {reason} answer")
        shown = js(driver, "return [prediction.textContent, prediction.dataset.abstain,"
                           " confidence.textContent, Array.from(document.querySelectorAll('#bars .fill'))"
                           ".map(e => parseFloat(e.style.width) || 0)]")
        text, abstain, note, bars = shown
        assert abstain == reason, shown
        if reason == "unsure":
            top = sorted(sorted(range(10), key=lambda d: -bars[d])[:2])
            assert text == f"Not sure: {top[0]} or {top[1]}?", shown
        else:
            assert text == "That doesn't look like a digit" and "Try drawing" in note, shown
        assert max(bars) > 0, shown
        settle(driver)
        driver.save_screenshot(str(artifacts / f"abstain-{reason}.png"))
        driver.find_element("id", "clear").click()
        assert js(driver, "return prediction.textContent") == "?"
        assert js(driver, "return prediction.dataset.abstain") is None
