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
    from schemathesis.config import SchemathesisConfig

    app = create_app(fake, settings=Settings(access_log=False))
    # A schema-violating body can also be over a limit (a huge invalid batch): 413 refuses it as surely
    # as 400 does, though schemathesis's default list of rejections leaves 413 out.
    rejections = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": rejections}}})
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


# A body can match the schema and still be refused, rightly: "format: binary" bytes that are no image,
# tensor data that does not fill the declared shape, a batch mixing flat and 28x28 images. For these,
# schemathesis's "schema-valid input must be accepted" check cannot hold; every other check (no 5xx,
# documented status codes and content types, response schemas, malformed input refused) still runs.
UNCHECKABLE_ACCEPTANCE = {("POST", "/predict"), ("POST", "/v2/models/mnistlite/infer"),
                          ("POST", "/v1/models/mnistlite:predict")}


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


OPERATIONS = sorted({(method, path) for method, path, _ in CASES})


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS])
def test_coverage_cases_conform_to_the_openapi_document(api, method, path):
    """Schemathesis's coverage phase: for every field, its boundary values and a value of each wrong type
    (a list where a string belongs, an object where a shape belongs), valid and invalid, one at a time.
    Random generation rarely reaches a field deep in a body with a wrong type; this walks them all."""
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance
    from schemathesis.generation import GenerationMode

    operation = api[path][method]
    excluded = [positive_data_acceptance] if (method, path) in UNCHECKABLE_ACCEPTANCE else []
    config = api.config.generation_for(operation=operation)
    n = 0
    for case in api.iter_coverage_cases(operation, generation_modes=list(GenerationMode),
                                        generation_config=config):
        blank_query = any(v in ("", [""]) for v in (case.query or {}).values())
        case.call_and_validate(excluded_checks=excluded + ([negative_data_rejection] if blank_query else []))
        n += 1
    assert n > 0
