"""A built, non-editable wheel carries the templates and runs the CLI on its own."""

import os
import subprocess
import sys
import zipfile

import pytest

import stagegen
from helpers import EXAMPLES, ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(out.glob("stagegen-*.whl"))
    target = out / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return wheel, target


def test_wheel_contains_the_template(installed):
    wheel, target = installed
    assert "stagegen/templates/module.py.j2" in zipfile.ZipFile(wheel).namelist()
    assert (target / "stagegen" / "templates" / "module.py.j2").is_file()


def test_installed_wheel_runs_the_cli(installed, tmp_path):
    _, target = installed
    example = EXAMPLES / "notes.txt"
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import stagegen; print(stagegen.__file__)"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(target))  # the wheel's copy, not the source tree
    run = subprocess.run(
        [sys.executable, "-m", "stagegen", str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == stagegen.generate(example.read_text(), filename=str(example))
