"""The one place where domain errors become HTTP errors, and the JSON shape every error takes.

Parsing and prediction raise plain exceptions (``InputError`` and its kinds here, the library's
``ImageError``/``ImageTooLarge``); ``install`` maps each to a Falcon ``HTTPError`` so no bad input
can surface as a 500. Every error body is Falcon's ``{"title", "description"}`` JSON; OIP routes
(``/v2/...``) also get ``"error"``, the field KServe and Triton clients read.
"""
from __future__ import annotations

import json

import falcon

from mnistlite.preprocess import ImageError, ImageTooLarge


class InputError(ValueError):
    """Request content the service cannot use: wrong shape, range, JSON or form (400)."""


class BodyTooLarge(InputError):
    """The request body is over the configured byte limit (413)."""


class UnsupportedType(InputError):
    """The request's Content-Type is not one the route accepts (415)."""


class NotReady(Exception):
    """The model failed its start-up self-test (503)."""


def _bad_input(req, resp, ex, params):
    raise falcon.HTTPBadRequest(title="Invalid input", description=str(ex))


def _bad_image(req, resp, ex, params):
    raise falcon.HTTPBadRequest(title="Invalid image", description=str(ex))


def _image_too_large(req, resp, ex, params):
    raise falcon.HTTPContentTooLarge(title="Image too large", description=str(ex))


def _body_too_large(req, resp, ex, params):
    raise falcon.HTTPContentTooLarge(title="Request body too large", description=str(ex))


def _unsupported(req, resp, ex, params):
    raise falcon.HTTPUnsupportedMediaType(title="Unsupported media type", description=str(ex))


def _not_ready(req, resp, ex, params):
    raise falcon.HTTPServiceUnavailable(title="Not ready", description=str(ex))


def serialize(req, resp, exception: falcon.HTTPError) -> None:
    """Error serializer: JSON whatever the Accept header says (clients of this API all speak JSON)."""
    body = exception.to_dict()
    if req.path.startswith("/v2/"):
        body["error"] = body.get("description") or body.get("title", "error")
    resp.data = json.dumps(body).encode()
    resp.content_type = falcon.MEDIA_JSON


def install(app: falcon.App) -> None:
    """Register the mappings and the serializer on ``app``.

    Falcon picks the most specific handler by the exception's MRO, so the order here does not matter.
    """
    app.add_error_handler(InputError, _bad_input)
    app.add_error_handler(BodyTooLarge, _body_too_large)
    app.add_error_handler(UnsupportedType, _unsupported)
    app.add_error_handler(ImageError, _bad_image)
    app.add_error_handler(ImageTooLarge, _image_too_large)
    app.add_error_handler(NotReady, _not_ready)
    app.set_error_serializer(serialize)
