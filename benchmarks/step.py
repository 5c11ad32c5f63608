"""Workload 6: a training step of a two-layer net, value and gradients.

The net of CS231n's two-layer assignment at its sizes: N = 200 samples of
D = 3072 features, H = 100 hidden units, C = 10 classes; relu, softmax
cross-entropy against one-hot targets, L2 regularisation of both weight
matrices. Gradients with respect to W1, b1, W2, b2 (not X, Y).

Candidates: hand-written NumPy (the assignment's backward pass: the softmax
gradient `(p - Y) / N`, the relu mask, `2 * reg * W` for the regulariser),
stagegen's numpy module (compact) of the same program, PyTorch eager
(autograd). Timed in a new process that runs nothing else (the allocator's
state of a process that ran large arrays before changes ratios by up to 40 %).
"""

from __future__ import annotations

import json
import sys

import stagegen

from .compare import table
from .peers import need
from .timing import in_fresh_process

N, D, H, C = 200, 3072, 100, 10
REG = 0.0005
SOURCE = f"""\
X: matrix(n, d)
W1: matrix(d, h)
b1: matrix(1, h)
W2: matrix(h, c)
b2: matrix(1, c)
Y: matrix(n, c)
A = relu(X @ W1 + b1)
S = A @ W2 + b2
L = -sum(Y * log_softmax(S, axis=1)) / {N} + {REG} * (sum(W1 * W1) + sum(W2 * W2))
"""


def hand(X, W1, b1, W2, b2, Y):
    import numpy as np

    h = X @ W1 + b1
    a = np.maximum(h, 0.0)
    s = a @ W2 + b2
    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -np.sum(Y * logp) / N + REG * (np.sum(W1 * W1) + np.sum(W2 * W2))
    ds = (np.exp(logp) - Y) / N
    dW2 = a.T @ ds + 2 * REG * W2
    db2 = ds.sum(axis=0, keepdims=True)
    da = ds @ W2.T
    da[h <= 0] = 0.0
    dW1 = X.T @ da + 2 * REG * W1
    db1 = da.sum(axis=0, keepdims=True)
    return loss, (dW1, db1, dW2, db2)


def builders(args) -> dict:
    def generated():
        module = stagegen.load(SOURCE, backend="numpy", style="compact", wrt="W1,b1,W2,b2")
        return lambda: module.value_and_grad(*args)

    def torch_eager():
        torch = need("torch")
        X, W1, b1, W2, b2, Y = (torch.from_numpy(a) for a in args)
        params = [p.requires_grad_() for p in (W1, b1, W2, b2)]

        def call():
            s = torch.relu(X @ params[0] + params[1]) @ params[2] + params[3]
            loss = -(Y * torch.log_softmax(s, dim=1)).sum() / N + REG * (
                (params[0] * params[0]).sum() + (params[2] * params[2]).sum()
            )
            grads = torch.autograd.grad(loss, params)
            return loss.detach().numpy(), tuple(g.numpy() for g in grads)

        return call

    return {
        "hand NumPy": lambda: lambda: hand(*args),
        "stagegen numpy compact": generated,
        "torch eager": torch_eager,
    }


def arguments(rng, n: int) -> tuple:
    """(X, W1, b1, W2, b2, Y) for `n` samples: small random weights, one-hot targets."""
    np = need("numpy")
    X = rng.standard_normal((n, D))
    W1, W2 = 1e-2 * rng.standard_normal((D, H)), 1e-2 * rng.standard_normal((H, C))
    b1, b2 = np.zeros((1, H)), np.zeros((1, C))
    return X, W1, b1, W2, b2, np.eye(C)[rng.integers(0, C, n)]


def measure(quick: bool) -> tuple[list[str], dict]:
    np = need("numpy")
    n = 20 if quick else N
    seconds, repeats = (0.005, 3) if quick else (0.1, 21)
    lines, _, rel = table(
        builders(arguments(np.random.default_rng(6), n)),
        (),
        "hand NumPy",
        seconds=seconds,
        repeats=repeats,
        unit="ms",
    )
    return [f"A two-layer net's step, N={n}, D={D}, H={H}, C={C}, float64, a fresh process:", "", *lines], rel


def run(quick: bool = False) -> tuple[list[str], dict]:
    """The table, measured in a new process (`python -m benchmarks.step`)."""
    return in_fresh_process("step", quick)


if __name__ == "__main__":
    lines, rel = measure("--quick" in sys.argv[1:])
    print(json.dumps({"lines": lines, "ratios": rel}))
