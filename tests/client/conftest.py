"""The live server the generated client talks to: the fuzzing runs' (gunicorn and nginx)."""

from tests.fuzz.conftest import server  # noqa: F401 (a fixture)
