"""Transfer Component Analysis (TCA).

Pan, Tsang, Kwok, Yang, "Domain Adaptation via Transfer Component Analysis", IEEE Transactions
on Neural Networks 22(2), 2011. https://doi.org/10.1109/TNN.2010.2091281

Unsupervised TCA: the ``n_components`` leading eigenvectors W of (K M K + mu I)^-1 K H K over
the pooled source and target samples (K the kernel matrix, M the MMD matrix, H the centring
matrix); the samples are embedded as K W and a shallow classifier is trained on the embedded
source. It is solved here as the symmetric-definite problem K H K w = lambda (K M K + mu I) w:
A = K M K + mu I = mu I + Z Z^T is the identity plus a low-rank term, so A^-1/2 is closed-form and
the eigenvectors come from the symmetric matrix A^-1/2 K H K A^-1/2, in float64: a dense
``eigh``, or on the CPU, when few components of a large problem are wanted, Lanczos (ARPACK,
machine-precision tolerance) on that matrix as an operator, which for a kernel matrix is never
formed. The eigenvectors with lambda > 0 lie in the range of K, so with a linear kernel and fewer
features d than samples n the problem is reduced exactly to d x d (through a Cholesky factor of
X^T X); the Nystrom solver runs the same reduction on m landmark features (approximate: exact TCA
of the Nystrom kernel).

Deviations from the paper
-------------------------
- Defaults follow the benchmark collection (jindongwang/transferlearning reference ``TCA.py``)
  whose numbers tlbench reproduces: linear kernel, 30 components, mu = 1, each sample L2-normalised
  before the kernel, M divided by its Frobenius norm, each eigenvector of unit Euclidean norm, and
  the embedded samples L2-normalised. The paper's own setting is
  ``normalize_input=false normalize_output=false mmd_scaling=none component_scaling=variance``
  (its constraint W^T K H K W = I gives every component unit variance).
- ``kernel="primal"`` is the reference scripts' variant: W acts on the features (d x d problem),
  with the regulariser mu ||W||^2 on the d-dim map instead of the n-dim dual coefficients.
- ``solver="nystrom"`` is an approximation added for large n; the paper solves exactly.
- Semi-supervised TCA (SSTCA, the paper's Section V) is not implemented.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch

from ...errors import ConfigError, DataError
from ...kernels import KERNELS, as_tensor, mmd2_diagnostic, pairwise_kernel
from ...registry import register_method
from ...task import TransferTask
from ...trainer import method_device
from ..base import MappingMethod, check_fitted

log = logging.getLogger(__name__)

TCA_KERNELS: tuple[str, ...] = ("primal", *KERNELS)
SOLVERS: tuple[str, ...] = ("exact", "nystrom")
COMPONENT_SCALINGS: tuple[str, ...] = ("unit", "variance", "constraint")
MMD_SCALINGS: tuple[str, ...] = ("fro", "none")
#: Largest n for an exact solve with a non-linear kernel (three n x n float64 matrices: 7.7 GB).
MAX_EXACT_KERNEL_N = 18_000


# ---------------------------------------------------------------------------------------------
# Private helpers: arrays in, arrays out (JDA reuses them).


def unit_rows(X: torch.Tensor) -> torch.Tensor:
    """L2-normalise each row; all-zero rows stay zero."""
    norms = torch.linalg.vector_norm(X, dim=1, keepdim=True)
    return X / torch.where(norms > 0, norms, torch.ones_like(norms))


def mmd_factor(ns: int, nt: int, *, like: torch.Tensor) -> torch.Tensor:
    """The column e with M = e e^T the marginal MMD matrix: 1/ns on source, -1/nt on target."""
    e = like.new_empty(ns + nt, 1)
    e[:ns] = 1.0 / ns
    e[ns:] = -1.0 / nt
    return e


def _inv_sqrt_lowrank(Z: torch.Tensor, mu: float):
    """A function applying (mu I + Z Z^T)^-1/2 to a matrix, via the thin SVD of Z (r x p)."""
    Q, s, _ = torch.linalg.svd(Z, full_matrices=False)
    f = torch.rsqrt(1.0 + s**2 / mu) - 1.0  # on range(Z); the complement gets 1 (scaled below)

    def apply(B: torch.Tensor) -> torch.Tensor:
        return (B + Q @ (f[:, None] * (Q.T @ B))) / mu**0.5

    return apply


def _checked(c: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not (torch.isfinite(w).all() and torch.isfinite(c).all()):
        raise DataError("TCA's eigenproblem produced non-finite values; check the input scale")
    return c, w


def tca_eigh(
    B: torch.Tensor, Z: torch.Tensor, mu: float, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k solutions of B c = lambda (mu I + Z Z^T) c, with c^T (mu I + Z Z^T) c = I.

    B is symmetric PSD (r x r: K H K in some basis), Z is r x p (K times a factor of M).
    Returns the eigenvectors (r x k) and eigenvalues (k), largest first.
    """
    half = _inv_sqrt_lowrank(Z, mu)
    C = half(half(B).T)  # A^-1/2 B A^-1/2 (A^-1/2 is symmetric)
    C = 0.5 * (C + C.T)
    w, V = torch.linalg.eigh(C)
    return _checked(half(V.flip(1)[:, :k]), w.flip(0)[:k])


def scale_components(c: torch.Tensor, w: torch.Tensor, scaling: str) -> torch.Tensor:
    """Rescale the eigenvectors: unit norm, unit projected variance, or as solved (constraint)."""
    if scaling == "unit":
        # the reference scripts' eigensolvers return unit-norm eigenvectors; for the dual
        # problems ||W_i|| = ||c_i|| because the basis of c is orthonormal
        return c / torch.linalg.vector_norm(c, dim=0).clamp_min(torch.finfo(c.dtype).tiny)
    if scaling == "variance":
        # the paper's constraint W^T K H K W = I: c^T B c = lambda c^T A c = lambda
        return c / w.clamp_min(torch.finfo(c.dtype).eps).sqrt()
    return c


def feature_basis(F: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The E-independent part of dual TCA with K = F F^T, reduced exactly to r = F's columns.

    The eigenvectors W lie in range(K) = range(F), so W = F S^+ P c for any P with P P^T = S =
    F^T F; then ||W|| = ||c||, the reduced K H K is P^T (S - g g^T / n) P with g = F^T 1, the MMD
    term is (P^T F^T E)(P^T F^T E)^T and the embedding K W = F (P c) is a linear map of F.
    P is the Cholesky factor of S, or V L^1/2 from ``eigh(S)`` when S is singular.
    Returns P and the reduced K H K (both r x r).
    """
    n = F.shape[0]
    S = F.T @ F
    L, info = torch.linalg.cholesky_ex(S)
    if int(info) == 0:
        LtL = L.T @ L
        PtSP, P = LtL @ LtL, L  # L^T (L L^T) L
    else:  # rank-deficient S: eigenvectors with zero eigenvalue carry no component
        lam, V = torch.linalg.eigh(S)
        root = lam.clamp_min(0.0).sqrt()
        PtSP, P = torch.diag(root**4), V * root
    Pg = P.T @ F.sum(0)
    B = PtSP - torch.outer(Pg, Pg) / n
    return P, 0.5 * (B + B.T)


def solve_features(
    F: torch.Tensor, E: torch.Tensor, mu: float, k: int, scaling: str, basis
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual TCA with K = F F^T; ``basis`` is :func:`feature_basis` (F); returns map, eigenvalues."""
    P, B = basis
    c, w = tca_solve(B, P.T @ (F.T @ E), mu, k)
    return P @ scale_components(c, w, scaling), w


def solve_primal(
    X: torch.Tensor, E: torch.Tensor, mu: float, k: int, scaling: str, basis
) -> tuple[torch.Tensor, torch.Tensor]:
    """Primal TCA: X^T H X a = lambda (X^T M X + mu I) a; returns the d x k map and eigenvalues.

    ``basis`` is X^T H X (the centred scatter matrix), reusable between calls with the same X.
    """
    c, w = tca_solve(basis, X.T @ E, mu, k)
    return scale_components(c, w, scaling), w


def tca_eigsh(
    apply_B, r: int, dtype: torch.dtype, Z: torch.Tensor, mu: float, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`tca_eigh` by Lanczos (ARPACK) on the operator ``V -> apply_B(V)`` (CPU).

    Only the k leading eigenpairs are computed, and B need not exist as a matrix (kernel path:
    two n x n products with H K per step instead of the O(n^3) of forming B and a dense
    ``eigh``). ``tol=0`` asks ARPACK for machine precision: the exact problem solved
    iteratively, not an approximation. The start vector is fixed (deterministic results).
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    half = _inv_sqrt_lowrank(Z, mu)

    def matmat(V: np.ndarray) -> np.ndarray:
        V = torch.as_tensor(V, dtype=dtype).reshape(r, -1)
        return half(apply_B(half(V))).numpy()

    op = LinearOperator((r, r), matvec=matmat, matmat=matmat, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(r)
    w, V = eigsh(op, k=k, which="LA", tol=0, v0=v0, ncv=min(r, max(2 * k + 1, 40)))
    order = np.argsort(-w)
    w = torch.as_tensor(w[order].copy(), dtype=dtype)
    return _checked(half(torch.as_tensor(V[:, order].copy(), dtype=dtype)), w)


def _use_lanczos(r: int, k: int, device: torch.device, threshold: int) -> bool:
    # ARPACK runs on the CPU; on CUDA a dense eigh is fast. Few components of a big problem only.
    return device.type == "cpu" and r > threshold and 16 * k <= r


#: CPU problems of size r above this use Lanczos for their k <= r / 16 leading eigenpairs (a
#: dense ``eigh`` of every eigenpair costs O(r^3); below it, or with more components, MKL's dense
#: ``eigh`` is faster: 0.21 vs 0.32 CPU s for 30 pairs at r = 800).
LANCZOS_MIN_R = 1500


def tca_solve(B: torch.Tensor, Z: torch.Tensor, mu: float, k: int):
    """:func:`tca_eigh` or, for a large CPU problem with few components, :func:`tca_eigsh`."""
    if _use_lanczos(B.shape[0], k, B.device, LANCZOS_MIN_R):
        return tca_eigsh(lambda V: B @ V, B.shape[0], B.dtype, Z, mu, k)
    return tca_eigh(B, Z, mu, k)


def solve_kernel(
    K: torch.Tensor, E: torch.Tensor, mu: float, k: int, scaling: str, basis
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual TCA on an explicit n x n kernel matrix; returns W (n x k) and the eigenvalues.

    ``basis`` is H K (``K - K.mean(0)``), reusable between calls with the same K.
    """
    Kc = basis  # H K, so K H K = (H K)^T (H K)
    n = K.shape[0]
    if _use_lanczos(n, k, K.device, LANCZOS_MIN_R):
        c, w = tca_eigsh(lambda V: Kc.T @ (Kc @ V), n, K.dtype, K @ E, mu, k)
    else:
        c, w = tca_eigh(Kc.T @ Kc, K @ E, mu, k)
    return scale_components(c, w, scaling), w


def nystrom_map(landmarks: torch.Tensor, kernel_args: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """The m x r matrix T with k(x, landmarks) @ T the Nystrom features (K ~ F F^T)."""
    Kmm = pairwise_kernel(landmarks, **kernel_args)
    lam, U = torch.linalg.eigh(0.5 * (Kmm + Kmm.T))
    # pseudo-inverse square root: directions below the rounding level carry no information
    keep = lam > lam.max() * len(lam) * torch.finfo(lam.dtype).eps
    return U[:, keep] * lam[keep].rsqrt(), int(keep.sum())


def check_common(est: Any, n: int) -> None:
    """Validate the hyperparameters TCA and JDA share; raise ConfigError naming the bad one."""
    if est.kernel not in TCA_KERNELS:
        raise ConfigError(f"unknown kernel {est.kernel!r}; choose one of {', '.join(TCA_KERNELS)}")
    if not (isinstance(est.n_components, int | np.integer) and est.n_components >= 1):
        raise ConfigError(f"n_components must be an integer >= 1, got {est.n_components!r}")
    if est.n_components > n:
        raise ConfigError(
            f"n_components={est.n_components} exceeds the {n} source + target samples"
        )
    if not (isinstance(est.mu, int | float) and est.mu > 0):
        raise ConfigError(f"mu (the trade-off of TCA) must be > 0, got {est.mu!r}")
    gamma = getattr(est, "gamma", None)
    if gamma is not None and not (isinstance(gamma, int | float) and gamma > 0):
        raise ConfigError(f"gamma must be > 0 (or null for the default), got {gamma!r}")
    if est.solver not in SOLVERS:
        raise ConfigError(f"unknown solver {est.solver!r}; choose one of {', '.join(SOLVERS)}")
    if est.component_scaling not in COMPONENT_SCALINGS:
        raise ConfigError(
            f"unknown component_scaling {est.component_scaling!r}; choose one of "
            f"{', '.join(COMPONENT_SCALINGS)}"
        )
    if est.mmd_scaling not in MMD_SCALINGS:
        raise ConfigError(f"unknown mmd_scaling {est.mmd_scaling!r}; choose fro or none")
    if est.dtype not in ("float64", "float32"):
        raise ConfigError(f"dtype must be float64 or float32, got {est.dtype!r}")
    if est.solver == "nystrom" and not (
        isinstance(est.n_landmarks, int | np.integer) and est.n_landmarks >= est.n_components
    ):
        raise ConfigError(
            f"n_landmarks must be an integer >= n_components ({est.n_components}), "
            f"got {est.n_landmarks!r}"
        )


class TorchMapping(MappingMethod):
    """A mapping computed in torch: records the device and precision it ran with.

    Subclasses have the hyperparameters ``device`` (``None``: the trainer's, else the CPU) and
    ``dtype`` (``float64`` or ``float32``).
    """

    def fit(self, task: TransferTask, trainer: Any | None = None):
        """Learn the mapping on source + target, then fit the classifier on the mapped source.

        Parameters
        ----------
        task : TransferTask
            Labeled source and (unlabeled) target training samples.
        trainer : Trainer, optional
            Only its ``device`` is read (when ``device`` is not set).

        Returns
        -------
        self
        """
        self.device_ = str(method_device(self.device, trainer))
        self.precision_ = "fp64" if self.dtype == "float64" else "fp32"
        return super().fit(task, trainer)


class SubspaceMapping(TorchMapping):
    """The projection machinery TCA and JDA share: fit a map, embed new samples with it."""

    def _setup(self, task: TransferTask) -> torch.Tensor:
        Xs, Xt = task.source.X, task.target.X
        check_common(self, Xs.shape[0] + Xt.shape[0])
        dt = torch.float64 if self.dtype == "float64" else torch.float32
        X = torch.cat([as_tensor(A, dtype=dt, device=self.device_) for A in (Xs, Xt)])
        self.n_features_in_ = X.shape[1]
        return unit_rows(X) if self.normalize_input else X

    def _prepare_solver(self, X: torch.Tensor, random_state: Any) -> torch.Tensor | None:
        """Decide the solver path; return the factor F (K = F F^T) when there is one."""
        self.gamma_ = self.gamma
        if self.kernel == "rbf" and self.gamma is None:
            from ...kernels import median_gamma

            self.gamma_ = median_gamma(X, seed=0)
        n, d = X.shape
        if self.kernel == "primal":
            self.solver_ = "primal"
            return None
        if self.kernel == "linear":
            # exact in the feature space when d < n; the Nystrom option is moot (exact is cheaper)
            self.solver_ = "features" if d < n else "kernel"
            return X if d < n else None
        if self.solver == "nystrom":
            rng = np.random.default_rng(random_state)
            m = min(int(self.n_landmarks), n)
            idx = torch.as_tensor(np.sort(rng.choice(n, m, replace=False)), device=X.device)
            self.landmarks_ = X[idx]
            self.nystrom_map_, _ = nystrom_map(self.landmarks_, self._kernel_args())
            self.solver_ = "nystrom"
            return pairwise_kernel(X, self.landmarks_, **self._kernel_args()) @ self.nystrom_map_
        if n > MAX_EXACT_KERNEL_N:
            raise ConfigError(
                f"exact TCA with a {self.kernel} kernel needs n x n matrices (n = {n}); use "
                f"solver=nystrom for n > {MAX_EXACT_KERNEL_N}"
            )
        self.solver_ = "kernel"
        return None

    def _kernel_args(self) -> dict[str, Any]:
        kernel = "linear" if self.kernel == "primal" else self.kernel
        return dict(kernel=kernel, gamma=self.gamma_, degree=self.degree, coef0=self.coef0)

    def _solve(
        self, X: torch.Tensor, F: torch.Tensor | None, E: torch.Tensor, cache: dict | None = None
    ) -> torch.Tensor:
        """Solve with the MMD factor E (M = E E^T); set the map; return the embedded samples.

        ``cache`` (a dict kept by the caller) holds the E-independent matrices between calls
        with the same samples (JDA's iterations).
        """
        k, s = int(self.n_components), self.component_scaling
        cache = {} if cache is None else cache
        if "basis" not in cache:  # the E-independent matrices, computed once per sample set
            if self.solver_ == "primal":
                Xc = X - X.mean(0)
                cache["basis"] = Xc.T @ Xc
            elif self.solver_ in ("features", "nystrom"):
                cache["basis"] = feature_basis(F)
            else:  # "kernel" (JDA's later iterations on a linear kernel: "primal_map")
                K = cache["K"] = pairwise_kernel(X, **self._kernel_args())
                cache["basis"] = K - K.mean(0)
        # the rank bound of the reduced problem: d (primal), F's columns, or n (kernel)
        r = X.shape[1] if self.solver_ == "primal" else X.shape[0] if F is None else F.shape[1]
        if k > r:
            # more components than the reduced problem has dimensions: the extra eigenvectors
            # would have eigenvalue 0 and carry no information, so keep r (and say so)
            if "warned" not in cache:
                log.warning("n_components=%d exceeds the rank bound %d; using %d", k, r, r)
                cache["warned"] = True
            k = r
        self.n_components_ = k
        if self.mmd_scaling == "fro":
            # the reference scripts divide M by its Frobenius norm; ||E E^T||_F = ||E^T E||_F
            E = E / torch.linalg.matrix_norm(E.T @ E).sqrt()
        if self.solver_ == "primal":
            self.components_, self.eigenvalues_ = solve_primal(X, E, self.mu, k, s, cache["basis"])
            Z = X @ self.components_
        elif self.solver_ in ("features", "nystrom"):
            self.components_, self.eigenvalues_ = solve_features(
                F, E, self.mu, k, s, cache["basis"]
            )
            Z = F @ self.components_
        else:
            K = cache["K"]
            W, self.eigenvalues_ = solve_kernel(K, E, self.mu, k, s, cache["basis"])
            if self.kernel == "linear":  # K W = X (X^T W): keep the d x k map, not X
                self.components_, self.solver_ = X.T @ W, "primal_map"
            else:  # transductive: keeps the fitted samples for the kernel at transform time
                self.components_, self.X_fit_ = W, X
            Z = K @ W
        return unit_rows(Z) if self.normalize_output else Z

    def _embed(self, X: torch.Tensor) -> torch.Tensor:
        if self.solver_ in ("primal", "features", "primal_map"):
            Z = X @ self.components_
        elif self.solver_ == "nystrom":
            K = pairwise_kernel(X, self.landmarks_, **self._kernel_args())
            Z = K @ self.nystrom_map_ @ self.components_
        else:
            Z = pairwise_kernel(X, self.X_fit_, **self._kernel_args()) @ self.components_
        return unit_rows(Z) if self.normalize_output else Z

    def transform(self, X: Any) -> np.ndarray:
        """Embed samples with the fitted map (new target samples, or source samples).

        Parameters
        ----------
        X : array-like of shape (n, d)
            Samples in the input space.

        Returns
        -------
        Z : ndarray of shape (n, n_components)
        """
        check_fitted(self, "components_")
        dt = self.components_.dtype
        Xt = as_tensor(X, dtype=dt, device=self.device_)
        if Xt.shape[1] != self.n_features_in_:
            raise DataError(f"X has {Xt.shape[1]} features; fitted on {self.n_features_in_}")
        if self.normalize_input:
            Xt = unit_rows(Xt)
        return self._embed(Xt).cpu().numpy()

    def _diagnose(self, task: TransferTask, Zs: torch.Tensor, Zt: torch.Tensor) -> None:
        self.diagnostics_ = {
            "mmd2_before": mmd2_diagnostic(task.source.X, task.target.X),
            "mmd2_after": mmd2_diagnostic(Zs, Zt),
        }


@register_method("tca")
class TCA(SubspaceMapping):
    """Transfer Component Analysis: a shared subspace where source and target MMD is small.

    Parameters
    ----------
    n_components : int, default=30
        Dimension m of the learned subspace. More than the source + target samples is an
        error; more than the reduced problem's rank (d features for the linear and primal
        kernels, the Nystrom rank) is cut to that rank with a warning (``n_components_``).
    mu : float, default=1.0
        Trade-off mu of the regulariser tr(W^T W) (the paper's mu).
    kernel : {"linear", "rbf", "polynomial", "primal"}, default="linear"
        Kernel k of the dual problem; ``primal``: W acts on the features (see Deviations).
    gamma, degree, coef0
        Kernel parameters (:func:`tlbench.kernels.pairwise_kernel`); ``gamma=None`` with
        ``rbf``: the median heuristic on the pooled (normalised) samples.
    solver : {"exact", "nystrom"}, default="exact"
        ``nystrom``: **approximate** TCA on ``n_landmarks`` random landmarks (rbf/polynomial;
        linear and primal kernels are always solved exactly, at O(n d^2)).
    n_landmarks : int, default=1000
        Nystrom landmarks m (cost O(n m^2)).
    normalize_input : bool, default=True
        L2-normalise each sample before the kernel (benchmark-collection protocol).
    normalize_output : bool, default=True
        L2-normalise each embedded sample (benchmark-collection protocol).
    component_scaling : {"unit", "variance", "constraint"}, default="unit"
        Scale of each eigenvector: unit norm (reference scripts), unit variance of the embedded
        data (the paper's constraint W^T K H K W = I), or W^T (K M K + mu I) W = I.
    mmd_scaling : {"fro", "none"}, default="fro"
        ``fro``: M divided by its Frobenius norm (reference scripts); ``none``: the paper's L.
    estimator : {"knn1", "logreg", "linear_svm"}, default="knn1"
        Classifier on the embedded source (1-NN as in the papers).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the eigenproblem.
    device : str, optional
        ``cpu``, ``cuda`` or ``auto``; default the trainer's device, else the CPU.
    random_state : int, optional
        Seed of the Nystrom landmarks and of the classifier.

    Attributes
    ----------
    components_ : Tensor
        The map: d x m (linear, primal), n_features(Nystrom) x m, or n x m dual coefficients W.
    eigenvalues_ : Tensor
        The m leading generalized eigenvalues.
    X_fit_ : Tensor
        The fitted samples (exact non-linear kernels: transductive, needed by ``transform``).
    n_components_ : int
        The number of components used.
    solver_ : str
        The path taken: ``features``, ``primal``, ``primal_map``, ``kernel`` or ``nystrom``.
    diagnostics_ : dict
        ``mmd2_before`` / ``mmd2_after``: :func:`tlbench.kernels.mmd2_diagnostic` of source vs
        target in the input space and in the embedding.

    References
    ----------
    Pan, Tsang, Kwok, Yang, "Domain Adaptation via Transfer Component Analysis", IEEE TNN 2011.
    """

    paper: ClassVar[str] = "Pan, Tsang, Kwok, Yang, Domain Adaptation via TCA, IEEE TNN 2011"

    def __init__(
        self,
        *,
        n_components: int = 30,
        mu: float = 1.0,
        kernel: str = "linear",
        gamma: float | None = None,
        degree: int = 3,
        coef0: float = 1.0,
        solver: str = "exact",
        n_landmarks: int = 1000,
        normalize_input: bool = True,
        normalize_output: bool = True,
        component_scaling: str = "unit",
        mmd_scaling: str = "fro",
        estimator: str = "knn1",
        dtype: str = "float64",
        device: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.mu = mu
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.solver = solver
        self.n_landmarks = n_landmarks
        self.normalize_input = normalize_input
        self.normalize_output = normalize_output
        self.component_scaling = component_scaling
        self.mmd_scaling = mmd_scaling
        self.estimator = estimator
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    def fit_transform(self, task: TransferTask) -> tuple[np.ndarray, np.ndarray]:
        """Solve TCA on the pooled samples; return the embedded source and target."""
        X = self._setup(task)
        ns, nt = len(task.source), len(task.target)
        F = self._prepare_solver(X, self.random_state)
        Z = self._solve(X, F, mmd_factor(ns, nt, like=X))
        self._diagnose(task, Z[:ns], Z[ns:])
        Z = Z.cpu().numpy()
        return Z[:ns], Z[ns:]
