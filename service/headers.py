"""Headers every response carries, whatever the route or error."""
from __future__ import annotations


class Nosniff:
    """Falcon middleware: ``X-Content-Type-Options: nosniff`` on every response, errors included, so a
    browser never reads a JSON error that echoes input (or any other body) as HTML or script."""

    def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header("X-Content-Type-Options", "nosniff")
