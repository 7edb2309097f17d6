"""KMM solver scaling: tlbench's exact solver versus a reference QP solver (scipy SLSQP).

    python experiments/benchmarks/kmm_scaling.py [--sizes 500 2000 5000 20000] [--ref-max 2000]

Data: n source samples N(0, I_10) and n target samples N(0.5, 0.8^2 I_10), 10 features, rbf
kernel, B = 1000, the paper's eps. Two kernel scales: gamma = 1/d (well-conditioned K) and the
median heuristic (tlbench's default; on 10 features K is numerically low-rank, the hard case).
Times include the kernel matrices (tlbench computes them block-wise in torch, float64). The
reference (SLSQP with the exact constraints, started from beta = 1) runs only up to --ref-max
samples; ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from tlbench.kernels import median_gamma, pairwise_kernel
from tlbench.methods.instance.kmm import solve_kmm_qp


def data(n: int, d: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, d)), rng.normal(0.5, 0.8, (n, d))


def ours(Xs, Xt, gamma, B=1000.0):
    start = time.perf_counter()
    ns, nt = len(Xs), len(Xt)
    K = torch.empty(ns, ns, dtype=torch.float64)
    kappa = torch.empty(ns, dtype=torch.float64)
    for i in range(0, ns, 2048):
        K[i : i + 2048] = pairwise_kernel(Xs[i : i + 2048], Xs, gamma=gamma, dtype=torch.float64)
        kappa[i : i + 2048] = pairwise_kernel(
            Xs[i : i + 2048], Xt, gamma=gamma, dtype=torch.float64
        ).sum(1)
    kappa *= ns / nt
    eps = (math.sqrt(ns) - 1) / math.sqrt(ns)
    beta, info = solve_kmm_qp(K, kappa, upper=B, lower_sum=ns * (1 - eps), upper_sum=ns * (1 + eps))
    return (
        time.perf_counter() - start,
        info,
        K.numpy(),
        kappa.numpy(),
        (ns * (1 - eps), ns * (1 + eps)),
    )


def reference(K, kappa, lo, hi, B=1000.0):
    from scipy.optimize import minimize

    start = time.perf_counter()
    n = len(kappa)
    res = minimize(
        lambda b: 0.5 * b @ K @ b - kappa @ b,
        np.ones(n),
        jac=lambda b: K @ b - kappa,
        bounds=[(0, B)] * n,
        constraints=[
            {"type": "ineq", "fun": lambda b: b.sum() - lo, "jac": lambda b: np.ones(n)},
            {"type": "ineq", "fun": lambda b: hi - b.sum(), "jac": lambda b: -np.ones(n)},
        ],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    return time.perf_counter() - start, float(res.fun)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000, 20000])
    parser.add_argument("--ref-max", type=int, default=2000)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(
        "| n_s = n_t | gamma | tlbench time (s) | iterations | Newton steps | KKT residual "
        "| objective | reference time (s) | reference objective | rel. gap (ref - ours) "
        "| time ratio ref/ours |"
    )
    print("|---" * 11 + "|")
    for n in args.sizes:
        Xs, Xt = data(n)
        for name, gamma in (("1/d", 1.0 / Xs.shape[1]), ("median", median_gamma(Xs, Xt))):
            t, info, K, kappa, (lo, hi) = ours(Xs, Xt, gamma)
            row = [
                f"{n}",
                f"{name} ({gamma:.3g})",
                f"{t:.2f}",
                f"{info['iterations']}",
                f"{info['newton_steps']}",
                f"{info['kkt_residual']:.1e}" + ("" if info["converged"] else " (not converged)"),
                f"{info['objective']:.8g}",
            ]
            if n <= args.ref_max:
                rt, rf = reference(K, kappa, lo, hi)
                gap = (rf - info["objective"]) / abs(info["objective"])
                row += [f"{rt:.2f}", f"{rf:.8g}", f"{gap:+.1e}", f"{rt / t:.1f}"]
            else:
                row += ["—", "—", "—", "—"]
            print("| " + " | ".join(row) + " |", flush=True)
            del K


if __name__ == "__main__":
    main()
