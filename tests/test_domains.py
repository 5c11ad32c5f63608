"""Aiming the check: sampling ranges declared or given, and points of the user's choice."""

import math
import re

import numpy as np
import pytest

import stagegen
from stagegen.errors import ParseError, UsageError
from stagegen.ir import Domain

LOG_SHIFTED = "x: scalar\nf = log(x - 4)\n"


def test_log_shifted_fails_by_default_with_a_hint():
    """log(x - 4) is real nowhere in [-3, 3]: the check fails, says so and says what to do."""
    report = stagegen.verify(LOG_SHIFTED, points=5)
    assert not report.ok and report.points == 0
    table = report.table()
    assert "FAILED: no point found" in table and "--domain x=5:10" in table
    # no row claims a check that did not happen
    assert all(row.points == 0 for row in report.rows)
    assert " ok" not in table.replace("not checked", "")


def test_log_shifted_passes_with_a_domain():
    report = stagegen.verify(LOG_SHIFTED, points=8, domain={"x": (5, 10)})
    assert report.ok and report.points == 8 and report.discarded == 0, report.table()
    assert "x in [5.0, 10.0]" in report.table()
    assert stagegen.verify(LOG_SHIFTED, points=8, domain={"x": "5:10"}).ok


def test_a_declared_range_is_where_points_are_drawn():
    source = "S: scalar in [50, 150]\nT: scalar in (0, 2)\nf = log(S - 49) * sqrt(T)\n"
    build = stagegen.build(source)
    assert [i.domain for i in build.graph.inputs] == [Domain(50.0, 150.0), Domain(0.0, 2.0, closed=False)]
    report = stagegen.verify(build, points=10)
    assert report.ok and report.points == 10 and report.discarded == 0, report.table()
    assert "S in [50.0, 150.0], T in (0.0, 2.0)" in report.table()


def test_a_given_domain_overrides_the_declared_one():
    source = "x: scalar in [-1, 1]\nf = log(x - 4)\n"
    assert stagegen.verify(source, points=3).points == 0
    assert stagegen.verify(source, points=3, domain={"x": (5, 6)}).ok


def test_points_drawn_lie_in_the_range(monkeypatch):
    seen = []
    source = "x: scalar in (1, 1.5)\ny: scalar\nf = x * y\n"
    module = stagegen.load(source)
    original = module.value_and_grad

    def spy(x, y):
        seen.append((x, y))
        return original(x, y)

    monkeypatch.setattr(module, "value_and_grad", spy)
    assert stagegen.verify(module, points=30).ok
    assert len(seen) == 30
    assert all(1 < x < 1.5 and -3 <= y <= 3 for x, y in seen)


def test_declared_ranges_in_the_module_are_kept():
    """A range is part of the source, so a module checked from its file samples there too."""
    module = stagegen.load("x: scalar in [5, 6]\nf = log(x - 4)\n")
    assert stagegen.verify(module, points=4).ok


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("x: scalar in [2, 1]", "an empty range"),
        ("x: scalar in [1, 1]", "an empty range"),
        ("x: scalar in [1, 2, 3]", "a range is [lo, hi] or (lo, hi)"),
        ("x: scalar in {1, 2}", "a range is [lo, hi] or (lo, hi)"),
        ("x: scalar in [a, 2]", "a range's ends are numbers"),
        ("x: scalar in [1e400, 2e400]", "finite numbers"),
        ("x: scalar not in [1, 2]", "'in [lo, hi]'"),
        ("x: scalar < 3", "'in [lo, hi]'"),
        ("x: scalar in [1, 2] in [3, 4]", "'in [lo, hi]'"),
    ],
)
def test_bad_ranges_are_located_errors(declaration, message):
    with pytest.raises(ParseError, match=re.escape(message)) as caught:
        stagegen.build(f"{declaration}\nf = x * 2\n", filename="r.txt")
    assert caught.value.span.line == 1


def test_negative_and_signed_ends():
    build = stagegen.build("x: scalar in [-2.5, +1]\nf = x**2\n")
    assert build.graph.inputs[0].domain == Domain(-2.5, 1.0)


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ({"z": (0, 1)}, "names z, which is not an input"),
        ({"x": (1, 0)}, "is not a range lo < hi"),
        ({"x": "1-2"}, "give \\(lo, hi\\) or 'lo:hi'"),
        ({"x": (0, math.inf)}, "is not a range"),
    ],
)
def test_bad_domains_are_usage_errors(domain, message):
    with pytest.raises(UsageError, match=message):
        stagegen.verify("f = x * y", points=2, domain=domain)


def test_check_at_given_points():
    report = stagegen.verify(LOG_SHIFTED, at=[{"x": 5.5}, {"x": 7}])
    assert report.ok and report.points == 2, report.table()
    assert "the 2 points given" in report.table()


def test_a_given_point_where_the_maths_is_not_real_fails_by_name():
    report = stagegen.verify(LOG_SHIFTED, at=[{"x": 5.5}, {"x": 1.0}])
    assert not report.ok
    assert "not finite and real at the point given (x=1.0)" in report.table()


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ([{"x": 1.0}], "misses y"),
        ([{"x": 1.0, "y": 2.0, "z": 3.0}], "names z, which is not an input"),
        ([], "no point given"),
    ],
)
def test_bad_points_are_usage_errors(at, message):
    with pytest.raises(UsageError, match=message):
        stagegen.verify("f = x * y", at=at)


def test_a_wrong_module_is_caught_at_a_given_point(tmp_path):
    good = stagegen.generate("x: scalar\ny: scalar\nf = x * y**2\n", filename="p.txt")
    bad = good.replace("(2 * y)", "(2.000001 * y)")
    assert bad != good
    path = tmp_path / "bad.py"
    path.write_text(bad)
    report = stagegen.verify(str(path), at=[{"x": 1.5, "y": -2.0}])
    assert not report.ok and "y=-2.0" in report.table()


def test_array_inputs_sample_in_their_range(monkeypatch):
    source = "W: matrix(n, m) in [0.5, 1]\nL = sum(log(W))\n"
    module = stagegen.load(source, backend="numpy")
    seen = []
    original = module.value_and_grad

    def spy(W):
        seen.append(np.asarray(W, dtype=float))
        return original(W)

    monkeypatch.setattr(module, "value_and_grad", spy)
    assert stagegen.verify(module, points=5).ok
    assert seen and all(np.all((a >= 0.5) & (a <= 1)) for a in seen if a.size)


def test_array_points_given():
    source = "W: matrix(2, 2)\nL = sum(log(W))\n"
    report = stagegen.verify(source, backend="numpy", at=[{"W": np.full((2, 2), 2.0)}])
    assert report.ok and report.points == 1, report.table()
