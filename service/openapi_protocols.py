"""The OpenAPI schemas and paths of the inference protocols: Open Inference Protocol infer (JSON and
binary tensors) and TF Serving's REST predict and status. ``openapi.document`` merges them in."""
from __future__ import annotations


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema) -> dict:
    return {"application/json": {"schema": schema}}


_ERRORS = {"400": {"description": "Bad input: malformed JSON, a field of the wrong type, wrong shape, "
                                  "datatype, range or binary size", "content": _json(_ref("Error"))},
           "413": {"description": "Body over the byte limit", "content": _json(_ref("Error"))},
           "415": {"description": "Unsupported Content-Type or Content-Encoding",
                   "content": _json(_ref("Error"))}}


def schemas(settings) -> dict:
    """The components/schemas entries of the OIP and TF Serving bodies."""
    scalar = {"anyOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string"}]}

    def parameters(**known):
        return {"type": "object", "additionalProperties": scalar, "properties": known,
                "description": "OIP parameters: each value a boolean, number or string"}

    images = {"type": "array", "minItems": 1, "maxItems": settings.max_batch,
              "items": {"$ref": "#/components/schemas/Image"}}
    return {
        "InputTensor": {
            "type": "object", "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "datatype": {"type": "string", "enum": ["FP32", "UINT8"]},
                "shape": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "integer",
                                                                                     "minimum": 1},
                          "description": "[n, 784] or [n, 28, 28]; data holds n images"},
                "data": {"type": "array", "items": {},
                         "description": "the numbers, flat or nested; left out for binary tensor data"},
                "parameters": parameters(binary_data_size={
                    "type": "integer", "minimum": 0,
                    "description": "the tensor's bytes follow the JSON header (little-endian, C order)"})}},
        "RequestedOutput": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "description": "one of the metadata's outputs"},
                           "parameters": parameters(binary_data={"type": "boolean"})}},
        "InferRequest": {
            "type": "object", "required": ["inputs"],
            "properties": {"id": {"type": "string"},
                           "parameters": parameters(binary_data_output={"type": "boolean"}),
                           "inputs": {"type": "array", "minItems": 1, "maxItems": 1,
                                      "items": {"$ref": "#/components/schemas/InputTensor"}},
                           "outputs": {"type": "array",
                                       "items": {"$ref": "#/components/schemas/RequestedOutput"}}}},
        "OutputTensor": {
            "type": "object", "required": ["name", "shape", "datatype"],
            "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                           "shape": {"type": "array", "items": {"type": "integer"}},
                           "data": {"type": "array", "items": {}}, "parameters": {"type": "object"}}},
        "InferResponse": {
            "type": "object", "required": ["model_name", "outputs"],
            "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                           "id": {"type": "string"}, "parameters": {"type": "object"},
                           "outputs": {"type": "array",
                                       "items": {"$ref": "#/components/schemas/OutputTensor"}}}},
        "TFPredictRequest": {
            "type": "object",
            "properties": {"signature_name": {"type": "string"}, "instances": images,
                           "inputs": {"oneOf": [images, {"type": "object", "minProperties": 1,
                                                         "maxProperties": 1,
                                                         "additionalProperties": images}]}},
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
            "description": "exactly one of instances (row format) and inputs (columnar: the list, or "
                           "{\"input\": [...]})"},
        "TFModelStatus": {
            "type": "object", "required": ["model_version_status"],
            "properties": {"model_version_status": {"type": "array", "items": {
                "type": "object", "required": ["version", "state", "status"],
                "properties": {"version": {"type": "string"}, "state": {"type": "string"},
                               "status": {"type": "object", "properties": {
                                   "error_code": {"type": "string"},
                                   "error_message": {"type": "string"}}}}}}}},
    }


def paths(settings) -> dict:
    """The OIP infer and TF Serving paths."""
    name = settings.model_name
    binary = {"type": "string", "format": "binary"}
    infer = {"post": {
        "summary": "Open Inference Protocol inference: JSON tensors, or binary tensor data",
        "description": "A body without Content-Type is read as JSON. Binary tensor data: the JSON request "
                       "first, its byte length in Inference-Header-Content-Length, then each input whose "
                       "parameters.binary_data_size is set, as raw little-endian bytes. Outputs asked for "
                       "with parameters.binary_data (or the request's parameters.binary_data_output) come "
                       "back the same way, with Inference-Header-Content-Length on the answer.",
        "parameters": [{"name": "Inference-Header-Content-Length", "in": "header", "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "binary tensor data: the byte length of the JSON part"}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}},
            "application/octet-stream": {"schema": binary}}},
        "responses": {"200": {"description": "One tensor per output; binary ones after the JSON part",
                              "content": {"application/json": {"schema": {
                                  "$ref": "#/components/schemas/InferResponse"}},
                                  "application/octet-stream": {"schema": binary}}},
                      **_ERRORS}}}
    predict = {"post": {
        "summary": "TF Serving / KServe v1 predict: the same answers, limits and errors as POST /predict",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/TFPredictRequest"}}}},
        "responses": {"200": {"description": "{predictions: [...]}, one answer per image",
                              "content": {"application/json": {"schema": {
                                  "$ref": "#/components/schemas/Predictions"}}}},
                      **_ERRORS}}}
    status = {"get": {"summary": "TF Serving model status", "responses": {
        "200": {"description": "The served version and its state",
                "content": _json(_ref("TFModelStatus"))}}}}
    return {f"/v2/models/{name}/infer": infer, f"/v1/models/{name}:predict": predict,
            f"/v1/models/{name}": status}
