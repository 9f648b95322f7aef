"""The service's answers as OIP output tensors: one tensor per answer field.

The answer builder (``ServingModel.predict``) is the one source of answer fields. The outputs are read
off probe answers on the first OIP request, so a field the builder adds (a flag, a reason) becomes an
output, in the metadata and in every infer response, with no code here: booleans become BOOL, integers
INT64, other numbers FP32, strings BYTES (``""`` where an answer leaves the field out) and lists of
numbers an FP32 row per image. ``model_version`` is the response's own field and ``warnings`` its
parameters.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

NOT_TENSORS = frozenset({"model_version", "warnings", "preprocessed_png"})
_NUMPY = {"BOOL": np.dtype("?"), "INT64": np.dtype("<i8"), "FP32": np.dtype("<f4")}
_EMPTY = {"BOOL": False, "INT64": 0, "FP32": 0.0, "BYTES": ""}


@dataclass(frozen=True)
class Output:
    """One output tensor: ``width`` None for one value per image, else a row of ``width`` numbers."""

    name: str
    datatype: str
    width: int | None = None

    def metadata(self) -> dict:
        shape = [-1] if self.width is None else [-1, self.width]
        return {"name": self.name, "datatype": self.datatype, "shape": shape}

    def values(self, answers: list) -> list:
        """The field over ``answers``: flat, one value per image or ``width`` per image."""
        if self.width is None:
            empty = _EMPTY[self.datatype]
            return [a.get(self.name, empty) for a in answers]
        zeros = [0.0] * self.width
        return [v for a in answers for v in a.get(self.name, zeros)]

    def shape(self, n: int) -> list:
        return [n] if self.width is None else [n, self.width]

    def json(self, answers: list) -> dict:
        """The tensor with its values in ``data``, exactly the numbers of the answers."""
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape(len(answers)),
                "data": self.values(answers)}

    def binary(self, answers: list) -> tuple[dict, bytes]:
        """The tensor's header (``parameters.binary_data_size``) and its little-endian bytes."""
        values = self.values(answers)
        if self.datatype == "BYTES":  # each element: its UTF-8 length as uint32 LE, then the bytes
            raw = b"".join(struct.pack("<I", len(b)) + b for b in (str(v).encode() for v in values))
        else:
            raw = np.asarray(values, _NUMPY[self.datatype]).tobytes()
        return ({"name": self.name, "datatype": self.datatype, "shape": self.shape(len(answers)),
                 "parameters": {"binary_data_size": len(raw)}}, raw)


def _kind(values: list) -> tuple[str, int | None] | None:
    if all(isinstance(v, bool) for v in values):
        return "BOOL", None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64", None
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "FP32", None
    if all(isinstance(v, str) for v in values):
        return "BYTES", None
    rows = [v for v in values if isinstance(v, list)]
    if len(rows) == len(values) and len({len(r) for r in rows}) == 1 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for r in rows for x in r):
        return "FP32", len(rows[0])
    return None  # not a tensor (nested objects, mixed types): left out


def outputs_of(answers: list) -> tuple[Output, ...]:
    """The outputs the fields of ``answers`` make, in the answers' field order."""
    names = list(dict.fromkeys(k for a in answers for k in a if k not in NOT_TENSORS))
    out = []
    for name in names:
        kind = _kind([a[name] for a in answers if name in a])
        if kind is not None:
            out.append(Output(name, *kind))
    return tuple(out)


def probe_outputs(predictor) -> tuple[Output, ...]:
    """The outputs of ``predictor``'s answers, read off its answers for a blank, a full and a noise image.

    Images no digit model should be sure of, so that fields an answer carries only sometimes (a reason
    for not answering, a warning) show up among them.
    """
    # fixed pseudo-random pixels (the top byte of Knuth's multiplicative hash), not numpy.random, which the
    # service image does not ship
    noise = ((np.arange(784, dtype=np.uint64) * 2654435761 % (1 << 32)) >> 24).astype(np.float32) / 255
    probe = np.stack([np.zeros(784, np.float32), np.ones(784, np.float32), noise])
    return outputs_of(predictor.predict(probe))
