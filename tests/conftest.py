"""Shared test options: golden files and hypothesis profiles."""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# "ci" runs in README's test command: the same examples every run (derandomized,
# no example database), so a landing is never blocked by chance; "long"
# (HYPOTHESIS_PROFILE=long) explores: random, 3,000 examples per property.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.py from the current generator (review the diff!)",
    )


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A temporary working folder holding in.txt, the notes' function (tests of the CLI)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STAGEGEN_DEBUG", raising=False)
    (tmp_path / "in.txt").write_text((EXAMPLES / "notes.txt").read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")
