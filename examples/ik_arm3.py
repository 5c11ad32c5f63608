"""Inverse kinematics of a three-link planar arm by damped least squares.

The end effector's position (ex, ey) is `examples/arm3.txt`, generated with
its Jacobian (``--with jacobian``): each step moves the joint angles by

    dt = J^T (J J^T + lam^2 I)^-1 (target - position)

Run: python examples/ik_arm3.py
"""

from pathlib import Path

import numpy as np

import stagegen

ARM = (Path(__file__).resolve().parent / "arm3.txt").read_text(encoding="utf-8")


def solve(target, angles=(0.3, 0.3, 0.3), damping=0.05, steps=200, tolerance=1e-12):
    """Joint angles that put the end effector at `target`; (angles, distance left, steps taken)."""
    arm = stagegen.load(ARM, with_="jacobian", filename="arm3.txt")
    t = np.array(angles, dtype=float)
    for step in range(1, steps + 1):
        position, jacobian = arm.value_and_jacobian(*t)
        error = np.asarray(target, dtype=float) - np.array(position)
        if np.linalg.norm(error) < tolerance:
            return t, float(np.linalg.norm(error)), step
        J = np.array(jacobian)  # 2 x 3: rows ex, ey; columns t1, t2, t3
        t = t + J.T @ np.linalg.solve(J @ J.T + damping**2 * np.eye(2), error)
    position, _ = arm.value_and_jacobian(*t)
    return t, float(np.linalg.norm(np.asarray(target) - np.array(position))), steps


if __name__ == "__main__":
    angles, distance, steps = solve((1.2, 0.9))
    print(f"angles {np.round(angles, 6)}, {distance:.1e} from the target after {steps} steps")
