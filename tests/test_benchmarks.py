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


def test_without_try_is_the_same_code_unwrapped():
    import stagegen
    from benchmarks.locate import without_try

    text = stagegen.generate("f = log(x) * y")
    plain = without_try(text)
    functions = plain.split("def _locate")[0]
    assert "try:" not in functions and "_locate(exc)" not in functions
    module = stagegen.module_from_text(plain, "plain")
    assert module.value_and_grad(2.0, 3.0) == stagegen.module_from_text(text, "t").value_and_grad(2.0, 3.0)
