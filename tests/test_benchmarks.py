"""The benchmark runner works (a smoke test: no timing is asserted)."""

import subprocess
import sys

from helpers import ROOT


def test_quick_run_prints_its_tables():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("machine: ") and "command: python -m benchmarks --quick" in out
    rows = [
        line for line in out.splitlines() if line.startswith("| seed |") or line.startswith("| compact |")
    ]
    assert len(rows) == 2
    sizes, per_pass = out.split("### Scale", 1)[1].split("CPU seconds per pass", 1)
    rows = [line.split(" |")[0] for line in sizes.splitlines() if line.startswith("| 1")]
    assert rows == ["| 100", "| 1,000", "| 10,000"]
    assert "fitted exponent (log-log least squares over 100 ... 10,000): wall " in sizes
    rows = [line.split(" |")[0] for line in per_pass.splitlines() if line.startswith("| 1")]
    assert rows == ["| 1,000", "| 10,000"]


def test_scale_workload_has_one_stage_per_line():
    import stagegen
    from benchmarks.scale import exponent, source

    assert len(stagegen.build(source(60)).graph.stages) == 60
    assert abs(exponent([10, 100, 1000], [2.0, 20.0, 200.0]) - 1.0) < 1e-12


def test_without_try_is_the_same_code_unwrapped():
    import stagegen
    from benchmarks.locate import without_try

    text = stagegen.generate("f = log(x) * y")
    plain = without_try(text)
    functions = plain.split("def _locate")[0]
    assert "try:" not in functions and "_locate(exc)" not in functions
    module = stagegen.module_from_text(plain, "plain")
    assert module.value_and_grad(2.0, 3.0) == stagegen.module_from_text(text, "t").value_and_grad(2.0, 3.0)
