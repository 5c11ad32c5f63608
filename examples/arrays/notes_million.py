"""The backprop notes' f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)
on arrays of a million elements, with the numpy backend.

The same file, examples/notes.txt, generates the scalar module and the array
one: with --backend numpy every stage is a NumPy expression over whole arrays,
and each gradient comes back with its input's shape. Run from the repository:

    python examples/arrays/notes_million.py
"""

from pathlib import Path

import numpy as np

import stagegen

source = (Path(__file__).resolve().parent.parent / "notes.txt").read_text()
arrays = stagegen.load(source, backend="numpy")
scalars = stagegen.load(source)

rng = np.random.default_rng(0)
x = rng.uniform(-4.0, 4.0, 1_000_000)
y = rng.uniform(-4.0, 4.0, 1_000_000)
f, (dx, dy) = arrays.value_and_grad(x, y)
print(f"f, dx, dy: arrays of shape {f.shape}, {dx.shape}, {dy.shape}")

# A scalar y against the array x: dy is summed over the broadcast axis.
f1, (dx1, dy1) = arrays.value_and_grad(x, 0.5)
print(f"with y = 0.5: dx has shape {dx1.shape}, dy = {float(dy1):.6g} (a sum over the million)")

# Every element agrees with the scalar module at that point.
worst = 0.0
for k in rng.integers(0, x.size, 1000):
    fk, (dxk, dyk) = scalars.value_and_grad(float(x[k]), float(y[k]))
    for got, expected in ((f[k], fk), (dx[k], dxk), (dy[k], dyk)):
        worst = max(worst, abs(got - expected) / (abs(expected) + 1e-300))
print(f"largest relative difference from the scalar module over 1000 elements: {worst:.1e}")
assert worst < 1e-12
