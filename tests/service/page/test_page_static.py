"""GET / and /static/*: types, the Content-Security-Policy, caching (ETag, 304, hashed links), HEAD, 404;
the page's files hold nothing inline and name no other origin; POST /predict?explain=1. In-process, in front
of a fake predictor."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from mnistlite.images.preprocess import preprocess_image
from service import page


@pytest.fixture(scope="module")
def client(quiet_client):
    return quiet_client


@pytest.fixture(scope="module")
def home(client):
    r = client.simulate_get("/")
    assert r.status_code == 200
    return r


def _assets(html: str) -> dict:
    """{name: hash} of the /static/ links in the page."""
    return dict(re.findall(r'"/static/([\w.-]+)\?v=([0-9a-f]{16})"', html))


def _csp(headers) -> dict:
    return {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split(";") if d.strip()}


def test_page_is_html_with_the_contract_elements(home):
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    html = home.text
    for needle in ('<canvas id="pad"', 'id="clear"', 'id="prediction"', 'type="file"', 'accept="image/*"',
                   "capture=", 'id="bars"', 'id="seen"', 'id="model-info"', 'name="viewport"'):
        assert needle in html, needle
    # Every control has a label: the buttons their text, the file inputs a <label for>.
    for input_id in re.findall(r'<input id="([\w-]+)"', html):
        assert f'<label for="{input_id}"' in html, input_id


def test_strict_content_security_policy_on_every_page_file(client, home):
    csp = _csp(home.headers)
    assert csp["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert csp[directive] == ["'self'"], directive
    assert csp["img-src"] == ["'self'", "blob:"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert "unsafe" not in home.headers["content-security-policy"]
    assert home.headers["x-content-type-options"] == "nosniff"
    for name, digest in _assets(home.text).items():
        r = client.simulate_get(f"/static/{name}", query_string=f"v={digest}")
        assert r.headers["content-security-policy"] == home.headers["content-security-policy"]


def test_nothing_inline_and_no_other_origin_in_the_files():
    files = page.load()
    html = files["index.html"].data.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for name, f in files.items():
        if name == "favicon.svg":
            text = re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", f.data.decode())  # a name, not a fetch
        else:
            text = f.data.decode()
        origin = re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
        assert not origin, f"{name} names another origin"
    for name in ("pad.js", "app.js"):
        js = files[name].data.decode()
        assert "eval(" not in js and "innerHTML" not in js and "setAttribute(\"style\"" not in js, name


def test_static_files_have_their_types_and_are_cached_by_hash(client, home):
    assets = _assets(home.text)
    assert set(assets) == {"pad.js", "app.js", "style.css", "favicon.svg"}
    for name, digest in assets.items():
        r = client.simulate_get(f"/static/{name}", query_string=f"v={digest}")
        assert r.status_code == 200
        assert r.headers["content-type"] == page.TYPES[name]
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["etag"] == f'"{digest}"'
        # Without the page's hash (or with an old one) the answer is revalidated, never kept for a year.
        for query in ("", "v=0000000000000000"):
            r = client.simulate_get(f"/static/{name}", query_string=query)
            assert r.headers["cache-control"] == "no-cache"


def test_etag_gives_304_and_a_changed_tag_gives_the_page(client, home):
    etag = home.headers["etag"]
    assert home.headers["cache-control"] == "no-cache"  # kept, and reused after a 304
    again = client.simulate_get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.simulate_get("/", headers={"If-None-Match": f"W/{etag}"}).status_code == 304  # weak compare
    assert client.simulate_get("/", headers={"If-None-Match": '"0123456789abcdef"'}).status_code == 200
    head = client.simulate_head("/")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


def test_unknown_static_files_are_404_json(client):
    for path in ("/static/nope.js", "/static/index.html", "/static/..%2Fapp.py"):
        r = client.simulate_get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/json")


PNG = {"Content-Type": "image/png"}


def _stroke_digit() -> np.ndarray:
    a = np.full((90, 70), 255, np.uint8)
    a[10:80, 30:38] = 0   # a "1", dark on white, as the page sends it
    a[10:18, 22:38] = 0
    return a


@pytest.mark.parametrize("flag", ["1", "true", "yes"])
def test_explain_returns_the_28x28_image_the_model_saw(client, flag, to_png):
    data = to_png(_stroke_digit())
    r = client.simulate_post("/predict", params={"explain": flag}, body=data, headers=PNG)
    assert r.status_code == 200, r.text
    seen = Image.open(io.BytesIO(base64.b64decode(r.json["preprocessed_png"], validate=True)))
    assert seen.format == "PNG" and seen.size == (28, 28) and seen.mode == "L"
    np.testing.assert_array_equal(np.asarray(seen), preprocess_image(data))
    plain = client.simulate_post("/predict", body=data, headers=PNG).json
    assert "preprocessed_png" not in plain
    assert {k: v for k, v in r.json.items() if k != "preprocessed_png"} == plain


def test_explain_off_values_and_a_bad_value(client, to_png):
    data = to_png(_stroke_digit())
    for off in ("0", "false", "no"):
        r = client.simulate_post("/predict", params={"explain": off}, body=data, headers=PNG)
        assert r.status_code == 200 and "preprocessed_png" not in r.json
    r = client.simulate_post("/predict", params={"explain": "maybe"}, body=data, headers=PNG)
    assert r.status_code == 400 and "explain" in r.json["description"]


def test_explain_on_a_json_batch_gives_each_instance_as_the_model_saw_it(client, digits):
    x = digits
    r = client.simulate_post("/predict", params={"explain": "1"},
                             json={"instances": (x[:3] / 255.0).tolist()})
    assert r.status_code == 200, r.text
    for answer, digit in zip(r.json["predictions"], x[:3], strict=True):
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["preprocessed_png"]))))
        np.testing.assert_array_equal(seen, digit)


def test_openapi_documents_explain_and_the_page(client):
    doc = client.simulate_get("/openapi.json").json
    (param,) = doc["paths"]["/predict"]["post"]["parameters"]
    assert param["name"] == "explain" and param["in"] == "query" and param["schema"]["type"] == "boolean"
    assert "preprocessed_png" in doc["components"]["schemas"]["Prediction"]["properties"]
    assert "text/html" in doc["paths"]["/"]["get"]["responses"]["200"]["content"]
