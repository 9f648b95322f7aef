"""An Open Inference Protocol inference request, type-checked field by field before any is used.

Whatever a client sends (a list where a string belongs, a string where a shape belongs, a parameter
that is an object), the answer is an ``InputError`` naming the field and what it must be: a 400, never
a ``TypeError`` deep in the handler.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

DATATYPES = {"FP32": 1.0, "UINT8": 255.0}  # datatype -> value range top, mapped onto [0, 1]
# Extensions this server does not implement: refused by name rather than silently ignored.
UNSUPPORTED = {"shared_memory_region": "shared memory", "shared_memory_byte_size": "shared memory",
               "shared_memory_offset": "shared memory", "classification": "the classification extension"}


@dataclass(frozen=True)
class InputTensor:
    """The one input: ``data`` (JSON numbers) or ``binary_size`` bytes after the JSON header."""

    name: str
    datatype: str
    shape: tuple
    data: object = None
    binary_size: int | None = None


@dataclass(frozen=True)
class InferRequest:
    """``outputs``: (name, binary) pairs in the order asked, or None for every output."""

    id: str | None
    input: InputTensor
    outputs: tuple | None
    binary_output: bool


_ABSENT = object()  # a field left out, told apart from one sent as null (which is refused)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parameters(value, where: str) -> dict:
    """An OIP parameters object: string keys, each value a boolean, number or string."""
    if value is _ABSENT:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where}.parameters must be an object, got {type(value).__name__}")
    for key, v in value.items():
        if key in UNSUPPORTED:
            raise InputError(f"{where}.parameters.{key}: {UNSUPPORTED[key]} is not supported by this server")
        if not isinstance(v, (bool, int, float, str)):
            raise InputError(f"{where}.parameters.{key} must be a boolean, number or string, "
                             f"got {type(v).__name__}")
    return value


def _flag(params: dict, key: str, where: str, default: bool) -> bool:
    v = params.get(key, default)
    if not isinstance(v, bool):
        raise InputError(f"{where}.parameters.{key} must be true or false, got {v!r}")
    return v


def _input(inputs, max_batch: int) -> InputTensor:
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InputError('"inputs" must be a list of exactly one tensor object')
    t, where = inputs[0], "inputs[0]"
    name = t.get("name")
    if not isinstance(name, str):
        raise InputError(f'{where}.name must be a string (the input is named "input"), got {name!r}')
    dtype = t.get("datatype")
    if not isinstance(dtype, str) or dtype not in DATATYPES:
        raise InputError(f"{where}.datatype must be one of {sorted(DATATYPES)}, got {dtype!r}")
    shape = t.get("shape")
    if not (isinstance(shape, list) and shape and all(_is_int(s) for s in shape)
            and (shape[1:] == [784] or shape[1:] == [28, 28]) and shape[0] >= 1):
        raise InputError(f"{where}.shape must be [n, 784] or [n, 28, 28] with n >= 1, got {shape!r}")
    if shape[0] > max_batch:
        raise InputError(f"batch of {shape[0]} is over the limit of {max_batch}")
    params = _parameters(t.get("parameters", _ABSENT), where)
    size = params.get("binary_data_size")
    if size is None:
        if "data" not in t:
            raise InputError(f'{where}.data must be a non-empty list of numbers (or send the tensor as '
                             f'binary data with parameters.binary_data_size)')
        return InputTensor(name, dtype, tuple(shape), data=t["data"])
    if not _is_int(size) or size < 0:
        raise InputError(f"{where}.parameters.binary_data_size must be an integer >= 0, got {size!r}")
    if "data" in t:
        raise InputError(f"{where} has both data and parameters.binary_data_size; send one of them")
    return InputTensor(name, dtype, tuple(shape), binary_size=size)


def _outputs(outputs, known: tuple, binary_default: bool) -> tuple | None:
    if outputs is _ABSENT:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise InputError('"outputs" must be a list of {"name": ...} objects')
    wanted = []
    for i, o in enumerate(outputs):
        name = o.get("name")
        if not isinstance(name, str):
            raise InputError(f"outputs[{i}].name must be a string, one of {list(known)}; got {name!r}")
        if name not in known:
            raise InputError(f"unknown output {name!r}; choose from {list(known)}")
        if any(name == w for w, _ in wanted):
            raise InputError(f"output {name!r} is asked for twice")
        params = _parameters(o.get("parameters", _ABSENT), f"outputs[{i}]")
        wanted.append((name, _flag(params, "binary_data", f"outputs[{i}]", binary_default)))
    return tuple(wanted)


def parse(doc, known_outputs: tuple, max_batch: int) -> InferRequest:
    """Check a decoded request body; ``known_outputs`` are the output names this model has."""
    if not isinstance(doc, dict):
        raise InputError('the body must be an OIP inference request object {"inputs": [...]}')
    rid = doc.get("id")
    if "id" in doc and not isinstance(rid, str):
        raise InputError(f"id must be a string, got {type(rid).__name__}")
    params = _parameters(doc.get("parameters", _ABSENT), "request")
    binary = _flag(params, "binary_data_output", "request", False)
    tensor = _input(doc.get("inputs"), max_batch)
    return InferRequest(rid, tensor, _outputs(doc.get("outputs", _ABSENT), known_outputs, binary), binary)
