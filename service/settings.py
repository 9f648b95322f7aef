"""Service limits and switches: one frozen dataclass, defaults here once, overridable from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

# Environment variable for each field (wsgi.py reads them; tests pass Settings directly).
ENV = {
    "max_body_bytes": "MNISTLITE_MAX_BODY_BYTES",
    "max_json_bytes": "MNISTLITE_MAX_JSON_BYTES",
    "max_image_side": "MNISTLITE_MAX_IMAGE_SIDE",
    "max_batch": "MNISTLITE_MAX_BATCH",
    "access_log": "MNISTLITE_ACCESS_LOG",
    "model_name": "MNISTLITE_MODEL_NAME",
}


@dataclass(frozen=True)
class Settings:
    """Hard limits of the service.

    ``max_body_bytes`` bounds image uploads (raw or multipart) and admits a phone photo; JSON bodies get
    their own ``max_json_bytes``, sized for a batch of 1,000 x 784 numbers in text.
    ``max_image_side`` is checked from the image header, before any pixel is decoded.
    """

    max_body_bytes: int = 16 << 20  # a phone photo (JPEG, up to ~12 MiB) with room for multipart framing
    max_json_bytes: int = 16 << 20  # 1,000 x 784 numbers as Python's json writes float64 (~20 chars)
    max_image_side: int = 4096
    max_batch: int = 1000
    access_log: bool = True
    model_name: str = "mnistlite"

    def __post_init__(self):
        for name in ("max_body_bytes", "max_json_bytes", "max_image_side", "max_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.model_name or not self.model_name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"model_name must be letters, digits, '-' or '_', got {self.model_name!r}")

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        """Settings with any field overridden by its MNISTLITE_* variable (ValueError names a bad one)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV[f.name])
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            if f.name == "access_log":
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(f"{ENV[f.name]} must be one of 1/0/true/false/yes/no/on/off, "
                                     f"got {raw!r}")
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            elif f.name == "model_name":
                values[f.name] = raw
            else:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{ENV[f.name]} must be an integer, got {raw!r}") from None
        try:
            return cls(**values)
        except ValueError as e:
            name = str(e).split(" ", 1)[0]
            raise ValueError(f"{ENV.get(name, name)}: {e}") from None
