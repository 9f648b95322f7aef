"""The data gate: the corruption detector, validating a week's folder, the noise it is tested with,
and the weekly data that passes it.

May import ``data``, ``images``, ``nn`` and the top-level ``files`` and ``metrics``.
"""
