"""benchmarks/gpu.py: its committed modules are what stagegen generates now,
it runs (on PyTorch's CPU tensors, the dry run) and checks what it times, and
without a GPU it says so and exits 0."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT
from stagegen.testing import assert_fresh

MODULES = ROOT / "benchmarks" / "gpu_modules"


@pytest.mark.parametrize("name", ["notes_array.py", "two_layer_array.py"])
def test_the_committed_modules_are_fresh(name):
    assert_fresh(MODULES / name)


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), *args], cwd=cwd, capture_output=True, text=True
    )


def test_the_dry_run_checks_and_writes_its_figures(tmp_path):
    pytest.importorskip("torch")
    done = run("--device", "cpu", "--size", "2000", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "gpu.json").read_text())
    assert {r["workload"] for r in rows} == {"notes", "two_layer"}
    assert all(
        r["max relative error"] <= 1e-10 and r["stagegen s"] > 0 and r["torch autograd s"] > 0 for r in rows
    )
    assert (tmp_path / "gpu.md").read_text().startswith("| workload |")


def test_without_a_gpu_it_skips(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run("--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0 and "no GPU" in done.stdout and not (tmp_path / "gpu.json").exists()
