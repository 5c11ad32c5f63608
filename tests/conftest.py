"""Shared test options: golden files and hypothesis profiles."""

import os

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


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.py from the current generator (review the diff!)",
    )


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")
