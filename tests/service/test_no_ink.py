"""An upload in which preprocessing finds no ink is answered with a warning that says so."""
import numpy as np


def test_an_upload_without_ink_is_answered_with_the_reason(client, to_png, digits):
    r = client.simulate_post("/predict", body=to_png(np.full((60, 80), 235, np.uint8)),
                             headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.json["warnings"] == ["no ink: the picture is one level"]
    r = client.simulate_post("/predict", body=to_png(255 - digits[0]), headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and "warnings" not in r.json
