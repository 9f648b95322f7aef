"""Schemathesis against the service's own /openapi.json: generated requests for every documented
operation, valid ones and deliberately invalid ones, and every response checked against the document
(status code, content type, body schema), never a 5xx. In-process through the WSGI app around a fake
predictor, like the falcon.testing tests."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from service.app import create_app
from service.openapi import document
from service.settings import Settings

schemathesis = pytest.importorskip("schemathesis")
pytestmark = pytest.mark.slow   # hundreds of generated requests: make test runs them, make unit does not

# The operations, read from the document itself (it depends on settings, not on a model); invalid
# requests can only be made for those that take a body (the GET routes have no parameters to break).
_PATHS = document(Settings(), 10)["paths"]
CASES = [(method.upper(), path, mode) for path, item in _PATHS.items() for method, op in item.items()
         for mode in (("positive", "negative") if "requestBody" in op else ("positive",))]


@pytest.fixture(scope="module")
def api(fake):
    app = create_app(fake, settings=Settings(access_log=False))
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


# A body can match the schema and still be refused, rightly: "format: binary" bytes that are no image,
# tensor data that does not fill the declared shape. For these two, schemathesis's "schema-valid input
# must be accepted" check cannot hold; every other check (no 5xx, documented status codes and content
# types, response schemas, malformed input refused) still runs on them.
UNCHECKABLE_ACCEPTANCE = {("POST", "/predict"), ("POST", "/v2/models/mnistlite/infer")}


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[" ".join(c) for c in CASES])
def test_every_operation_conforms_to_the_openapi_document(api, method, path, mode):
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance
    from schemathesis.generation import GenerationMode

    operation = api[path][method]
    excluded = [positive_data_acceptance] if (method, path) in UNCHECKABLE_ACCEPTANCE else []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(GenerationMode(mode)))
    def check(case):
        # Falcon reads a blank query value as no value (keep_blank_qs_values is off): "?explain=" is
        # "?explain" left out, a valid request, though schemathesis generates it as a non-boolean.
        blank_query = any(v in ("", [""]) for v in (case.query or {}).values())
        case.call_and_validate(excluded_checks=excluded + ([negative_data_rejection] if blank_query else []))

    check()
