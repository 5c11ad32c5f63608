"""Generated text equals tests/golden/<name>.py byte for byte.

The emitted source is the product: review every diff to a golden file as code.
Regenerate on purpose with ``pytest tests/test_golden.py --update-goldens``.
The version the docstring's first line names is not compared (a release does
not change a golden file).
"""

import difflib
from pathlib import Path

import black
import pytest

import stagegen
from stagegen.fresh import unversioned

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"

CASES = {
    "circuit": ("circuit.txt", {}),
    "notes": ("notes.txt", {}),
    "notes_compact": ("notes.txt", {"style": "compact"}),
    "notes_expr": ("notes_expr.txt", {}),
    "neuron": ("neuron.txt", {}),
    "neuron_fine": ("neuron.txt", {"gates": "fine"}),
    "neuron_wrt_w": ("neuron.txt", {"wrt": "w0,w1,w2"}),
    "gates": ("gates.txt", {}),
    "gates_compact": ("gates.txt", {"style": "compact"}),
    # several outputs
    "black_scholes": ("black_scholes.txt", {}),
    "black_scholes_price": ("black_scholes_price.txt", {"style": "compact"}),
    "arm3_compact": ("arm3.txt", {"style": "compact"}),
    # functions asked for: value_and_jacobian and jvp
    "arm3_functions": ("arm3.txt", {"with_": "jacobian,jvp"}),
    "notes_functions": ("notes.txt", {"with_": "jacobian,jvp", "style": "compact"}),
    "residuals": ("arrays/residuals.txt", {"backend": "numpy", "wrt": "A,k,c", "with_": "jacobian"}),
    "softmax_functions": ("arrays/softmax.txt", {"backend": "numpy", "with_": "jacobian,jvp"}),
    "notes_numpy_functions": (
        "notes.txt",
        {"backend": "numpy", "style": "compact", "with_": "jacobian_diag,jvp"},
    ),
    # second order: hvp (forward over reverse) and hessian
    "notes_second_order": ("notes.txt", {"with_": "hvp,hessian"}),
    "rosenbrock": ("rosenbrock.txt", {"with_": "hvp,hessian", "style": "compact"}),
    # the numpy backend
    "notes_numpy": ("notes.txt", {"backend": "numpy"}),
    "matmul": ("arrays/matmul.txt", {"backend": "numpy"}),
    "linreg": ("arrays/linreg.txt", {"backend": "numpy"}),
    "two_layer": ("arrays/two_layer.txt", {"backend": "numpy", "style": "compact"}),
    "softmax": ("arrays/softmax.txt", {"backend": "numpy"}),
    "batchnorm": ("arrays/batchnorm.txt", {"backend": "numpy"}),
    # vectors in @: matvec, vecmat and vecdot, chosen by the operands' ranks
    "matvec": ("arrays/matvec.txt", {"backend": "numpy"}),
    "outer_dot": ("arrays/outer_dot.txt", {"backend": "numpy", "style": "compact"}),
    # stacks of matrices: batched attention
    "attention": ("arrays/attention.txt", {"backend": "numpy"}),
    "attention_array": ("arrays/attention.txt", {"backend": "array", "style": "compact"}),
    "stacks": ("arrays/stacks.txt", {"backend": "numpy", "style": "compact"}),
    # where: a stage of one branch computed only there (math) or quietly, its gradient selected
    "where": ("where.txt", {}),
    "where_numpy": ("where.txt", {"backend": "numpy", "style": "compact"}),
    "huber": ("arrays/huber.txt", {"backend": "numpy", "style": "compact"}),
    # subscripts: slices into zeros then += (an LSTM's four gates), a gather's add.at
    "lstm": ("arrays/lstm.txt", {"backend": "numpy", "style": "compact"}),
    # slices whose bounds are sizes (a[:, H:2*H] of an axis of 4*H), on the array API
    "lstm_sized": ("arrays/lstm_sized.txt", {"backend": "array", "style": "compact"}),
    "classifier": ("arrays/classifier.txt", {"backend": "numpy", "style": "compact"}),
    "classifier_hvp": ("arrays/classifier.txt", {"backend": "numpy", "with_": "hvp"}),
    "classifier_array": ("arrays/classifier.txt", {"backend": "array", "style": "compact"}),
    "multilabel": ("arrays/multilabel.txt", {"backend": "numpy", "style": "compact"}),
    "spatial_batchnorm": ("arrays/spatial_batchnorm.txt", {"backend": "numpy", "style": "compact"}),
    "global_pool": ("arrays/global_pool.txt", {"backend": "numpy", "style": "compact"}),
    # reshape: max pooling over the windows a reshape makes an axis of
    "maxpool": ("arrays/maxpool.txt", {"backend": "numpy", "style": "compact"}),
    # the array API backend
    "notes_array": ("notes.txt", {"backend": "array"}),
    "two_layer_array": ("arrays/two_layer.txt", {"backend": "array", "style": "compact"}),
    "huber_array": ("arrays/huber.txt", {"backend": "array", "style": "compact"}),
    "matvec_array": ("arrays/matvec.txt", {"backend": "array", "style": "compact"}),
    # and as PyTorch's autograd.Function (--emit-adapter)
    "two_layer_torch": (
        "arrays/two_layer.txt",
        {"backend": "array", "style": "compact", "wrt": "W1,b1,W2,b2", "emit_adapter": "torch"},
    ),
    # the numba backend: the same listings, compiled
    "notes_numba": ("notes.txt", {"backend": "numba"}),
    "gates_numba": ("gates.txt", {"backend": "numba"}),
    "notes_numba_functions": ("notes.txt", {"backend": "numba", "style": "compact", "with_": "jacobian,jvp"}),
    # a SymPy object: generated from, and recording, the source it prints
    "notes_sympy": (None, {}),
}


def notes_sympy():
    """The backprop notes' function, f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2), as SymPy writes it."""
    import sympy as sp

    x, y = sp.symbols("x y", real=True)
    return (x + stagegen.sigmoid(y)) / (stagegen.sigmoid(x) + (x + y) ** 2)


def generated(name: str) -> str:
    example, options = CASES[name]
    if example is None:
        return stagegen.generate(notes_sympy(), **options)
    text = (ROOT / "examples" / example).read_text(encoding="utf-8")
    return stagegen.generate(text, filename=f"examples/{example}", **options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, update_goldens):
    path = GOLDEN / f"{name}.py"
    text = generated(name)
    if update_goldens or not path.exists():
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if unversioned(text) != unversioned(expected):
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), text.splitlines(True), f"golden/{name}.py", "generated"
            )
        )
        pytest.fail(f"generated code differs from tests/golden/{name}.py:\n{diff}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_is_black_formatted(name):
    text = (GOLDEN / f"{name}.py").read_text(encoding="utf-8")
    assert black.format_str(text, mode=black.Mode()) == text
