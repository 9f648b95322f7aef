"""The one place where domain errors become HTTP errors, and the JSON shape every error takes.

Parsing and prediction raise plain exceptions (``InputError`` and its kinds here, the library's
``ImageError``/``ImageTooLarge``); ``install`` maps each to a Falcon ``HTTPError`` so no bad input
can surface as a 500. Every error body is Falcon's ``{"title", "description"}`` JSON; OIP and TF Serving
routes (``/v2/...``, ``/v1/models/...``) also get ``"error"``, the field their clients read.
"""
from __future__ import annotations

import json
from functools import partial

import falcon

from mnistlite.images.decode import ImageError, ImageTooLarge

try:  # gunicorn raises these from wsgi.input when a chunked body is malformed or cut off mid-stream
    from gunicorn.http.errors import NoMoreData, ParseException
    _BODY_ERRORS = (NoMoreData, ParseException)
except ImportError:  # pragma: no cover - serving without gunicorn (tests, another WSGI server)
    _BODY_ERRORS = ()


class InputError(ValueError):
    """Request content the service cannot use: wrong shape, range, JSON or form (400)."""


class BodyTooLarge(InputError):
    """The request body is over the configured byte limit (413)."""


class BodyTimeout(InputError):
    """The request body did not arrive within the server's deadline (408)."""


class UnsupportedType(InputError):
    """The request's Content-Type is not one the route accepts (415)."""


class ServerBusy(TimeoutError):
    """The worker is receiving as many bodies as it may hold; this one was not read (503, retry)."""


class NotReady(Exception):
    """The model failed its start-up self-test (503)."""


# Domain error -> (Falcon HTTP error, title). Falcon picks the most specific handler by the
# exception's MRO, so subclasses (BodyTooLarge, ImageTooLarge) win over their bases.
ERRORS = {
    InputError: (falcon.HTTPBadRequest, "Invalid input"),
    BodyTooLarge: (falcon.HTTPContentTooLarge, "Request body too large"),
    BodyTimeout: (partial(falcon.HTTPError, falcon.HTTP_408), "Request timeout"),
    UnsupportedType: (falcon.HTTPUnsupportedMediaType, "Unsupported media type"),
    ImageError: (falcon.HTTPBadRequest, "Invalid image"),
    ImageTooLarge: (falcon.HTTPContentTooLarge, "Image too large"),
    NotReady: (falcon.HTTPServiceUnavailable, "Not ready"),
    ServerBusy: (partial(falcon.HTTPServiceUnavailable, retry_after=5), "Server busy"),
    **{kind: (falcon.HTTPBadRequest, "Malformed request body") for kind in _BODY_ERRORS},
}


def _handler(http_error, title):
    def handle(req, resp, ex, params):
        raise http_error(title=title, description=str(ex) or type(ex).__name__)

    return handle


def serialize(req, resp, exception: falcon.HTTPError) -> None:
    """Error serializer: JSON whatever the Accept header says (clients of this API all speak JSON)."""
    body = exception.to_dict()
    if req.path.startswith(("/v2/", "/v1/models/")):
        body["error"] = body.get("description") or body.get("title", "error")
    resp.data = json.dumps(body).encode()
    resp.content_type = falcon.MEDIA_JSON


def install(app: falcon.App) -> None:
    """Register the ``ERRORS`` mappings and the JSON serializer on ``app``."""
    for error, (http_error, title) in ERRORS.items():
        app.add_error_handler(error, _handler(http_error, title))
    app.set_error_serializer(serialize)
