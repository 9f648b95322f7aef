"""Release: scoring a model file on test data, the evaluation gate and its report, the model registry on S3.

May import ``data``, ``quality``, ``images``, ``nn`` and the top-level modules.
"""
