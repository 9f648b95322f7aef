"""The page's abstentions in a real headless Chromium: "Not sure: a or b?" and "That doesn't look like a
digit" instead of a big digit, against services whose models always abstain."""
from __future__ import annotations

import pytest
from browser_kit import ANSWER, js, settle, stroke, wait_for

pytestmark = pytest.mark.slow


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
