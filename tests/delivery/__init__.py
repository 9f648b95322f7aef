"""The delivery tests: a package, so that its conftest.py is imported as delivery.conftest and never
shadows tests/conftest.py, which some tests import by the bare name ``conftest``."""
