"""README stays in step with the code: its listings, gate table and commands."""

import re

from helpers import ROOT
from stagegen.gates import REGISTRY

README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str = "") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_listing_is_the_generated_module():
    golden = (ROOT / "tests" / "golden" / "notes.py").read_text()
    listing = next(b for b in blocks("python") if "def backward(dout, cache):" in b)
    for part in listing.split("\n\n\n"):
        part = part.split("...\n", 1)[-1] if part.startswith('"""') else part
        if "value_and_grad" in part or "def _locate" in part:
            continue  # abridged in the README
        assert part.strip() in golden, part


def test_compact_listing_is_generated():
    golden = (ROOT / "tests" / "golden" / "notes_compact.py").read_text()
    compact = next(b for b in blocks("python") if "dnum = invden  # (8)" in b)
    for line in compact.strip().splitlines():
        assert line in golden, line


def test_input_file_is_shown():
    assert (ROOT / "examples" / "notes.txt").read_text().split("\n", 1)[1] in README


def test_gate_table_names_every_gate():
    table = README.split("## Gates", 1)[1].split("##", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| ")]
    listed = {name.strip() for row in rows for name in row.split(",")}
    assert set(REGISTRY) <= listed, set(REGISTRY) - listed


def test_commands():
    assert "pip install . && stagegen examples/notes.txt" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert (
        """grep -m1 '^pip install -e "\\.\\[test\\]" -c constraints.txt && python -m pytest' README.md"""
        in ci
    )
    assert re.search(
        r'^pip install -e "\.\[test\]" -c constraints.txt && python -m pytest -q$', README, flags=re.M
    )


def test_matrix_listing_is_generated():
    golden = (ROOT / "tests" / "golden" / "matmul.py").read_text()
    listing = next(b for b in blocks("python") if "dW = dD @ X.T  # (1)" in b)
    for line in listing.strip().splitlines():
        assert line in golden, line


def test_matrix_example_is_shown():
    assert "\n".join((ROOT / "examples" / "arrays" / "matmul.txt").read_text().splitlines()[2:]) in README


def test_trace_excerpt_is_the_real_output():
    import stagegen

    command = "$ stagegen examples/notes.txt --trace x=3,y=-4\n"
    shown = README.split("```\n" + command, 1)[1].split("```", 1)[0]
    notes = (ROOT / "examples" / "notes.txt").read_text(encoding="utf-8")
    assert shown == stagegen.trace(notes, x=3, y=-4).table() + "\n"


def test_diagram_image_is_committed_and_described():
    import stagegen

    assert "stagegen examples/notes.txt --diagram docs/notes.png --at x=3,y=-4\n" in README
    assert "](docs/notes.png)" in README
    assert (ROOT / "docs" / "notes.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # the prose reads x's gradient off the picture: the numbers the diagram shows
    notes = (ROOT / "examples" / "notes.txt").read_text(encoding="utf-8")
    dot = stagegen.diagram(notes, {"x": 3, "y": -4}).dot
    assert "its\n2.06 is the `dx` of the trace" in README and ">2.06<" in dot
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get install -y graphviz" in ci and "apt-get update" in ci


def test_check_excerpt_is_the_real_output():
    import stagegen

    command = "$ stagegen examples/notes.txt --check\n"
    shown = README.split("```\n" + command, 1)[1].split("```", 1)[0]
    head, cut, tail = shown.partition("...\n")
    assert cut and tail
    notes = (ROOT / "examples" / "notes.txt").read_text(encoding="utf-8")
    table = stagegen.verify(stagegen.build(notes, filename="examples/notes.txt")).table()
    assert table.startswith(head) and table.endswith(tail.removesuffix("\n"))


def test_failed_check_excerpt_is_the_real_output():
    import stagegen

    command = "$ echo 'f = log(x - 4)' | stagegen - --check --points 5\n...\n"
    shown = README.split("```\n" + command, 1)[1].split("\n", 1)[0]
    table = stagegen.verify("f = log(x - 4)", points=5).table()
    assert table.endswith("\n" + shown)
