"""The one closed form behind DiffQuickFix, LocoEdit and UCE, in Keras's kernel layout.

A Keras Dense layer computes y = x @ K + b with K of shape (in, out) (PyTorch's weight W is
K^T). Given keys X (n, in) and targets T (n, out) for x @ K', the update minimises

    lam * ||K' - K||^2 + sum_i ||x_i K' - t_i||^2  (+ sum_j ||x_j K' - x_j K||^2 over keep keys)

whose normal equations (lam I + X^T X) K' = lam K + X^T T give

    K' = (lam I + X^T X)^-1 (lam K + X^T T).

Transposed, this is the papers' W' = (lam W + sum t x^T)(lam I + sum x x^T)^-1 (DiffQuickFix)
and W' = [(X^T X + lam I)^-1 (X^T V W^T + lam W^T)]^T (LocoEdit, with T = V W^T = V @ K).
Keep keys (UCE's preservation terms) are extra rows whose targets are their current outputs.
"""

import numpy as np


def _check_lam(lam):
    if not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"lam={lam}: the regulariser must be a positive finite number "
                         "(e.g. 0.01); lam <= 0 can make the solve singular")


def ridge_update(kernel, keys, targets, lam=0.01, keep_keys=None):
    """The closed-form kernel K' (in, out), float64 solve returned as kernel's dtype.

    Args:
        kernel: K (in, out), the Dense kernel now.
        keys: X (n, in), inputs whose outputs should change.
        targets: T (n, out), what x_i @ K' should be (bias already subtracted).
        lam: weight of ||K' - K||^2 (> 0).
        keep_keys: optional (m, in) inputs whose outputs x_j @ K should stay.
    """
    _check_lam(lam)
    kernel64 = np.asarray(kernel, np.float64)
    keys, targets = np.asarray(keys, np.float64), np.asarray(targets, np.float64)
    if keys.ndim != 2 or keys.shape[1] != kernel64.shape[0]:
        raise ValueError(f"keys {keys.shape} must be (n, {kernel64.shape[0]}) for a kernel "
                         f"{kernel64.shape}")
    if targets.shape != (len(keys), kernel64.shape[1]):
        raise ValueError(f"targets {targets.shape} must be ({len(keys)}, {kernel64.shape[1]})")
    if keep_keys is not None and len(keep_keys):
        keep_keys = np.asarray(keep_keys, np.float64)
        keys = np.concatenate([keys, keep_keys])
        targets = np.concatenate([targets, keep_keys @ kernel64])
    right = lam * kernel64 + keys.T @ targets  # (in, out)
    # Fewer keys than inputs (the usual case: 9-200 rows vs 768): by the push-through identity
    # (lam I + X^T X)^-1 = (I - X^T (lam I_n + X X^T)^-1 X) / lam, an n x n solve (`_solve`).
    return _solve(keys, right, lam).astype(np.asarray(kernel).dtype)


def linear_map_update(keys, wanted, lam=0.01, keep_keys=None):
    """The map M (in, in) with ridge_update(K, keys, wanted @ K, lam, keep_keys) = M @ K for
    EVERY kernel K: LocoEdit's targets are the target rows through the kernel itself, so one
    solve serves all its W_K and W_V kernels (float64).

    With A = lam I + X^T X over keys and keep keys, and T = [wanted; keep] @ K,
    lam K + X^T T = (lam I + keys^T wanted + keep^T keep) K =: B K, so K' = A^-1 B K.

    Args:
        keys: X (n, in); wanted: (n, in), the rows whose outputs the keys should give;
        keep_keys: optional (m, in) rows whose outputs stay.
    """
    _check_lam(lam)
    keys, wanted = np.asarray(keys, np.float64), np.asarray(wanted, np.float64)
    if keys.ndim != 2 or wanted.shape != keys.shape:
        raise ValueError(f"keys {keys.shape} and wanted {wanted.shape} must be the same (n, in)")
    right = lam * np.eye(keys.shape[1]) + keys.T @ wanted
    if keep_keys is not None and len(keep_keys):
        keep_keys = np.asarray(keep_keys, np.float64)
        right += keep_keys.T @ keep_keys
        keys = np.concatenate([keys, keep_keys])
    return _solve(keys, right, lam)


def _solve(keys, right, lam):
    """(lam I + X^T X)^-1 right, by the n x n push-through form when X has fewer rows."""
    if len(keys) < keys.shape[1]:
        small = lam * np.eye(len(keys)) + keys @ keys.T
        return (right - keys.T @ np.linalg.solve(small, keys @ right)) / lam
    return np.linalg.solve(lam * np.eye(keys.shape[1]) + keys.T @ keys, right)


def objective_gradient(new_kernel, kernel, keys, targets, lam, keep_keys=None):
    """Gradient (in, out) of the objective above at `new_kernel` (zero at the solution)."""
    new_kernel, kernel = np.asarray(new_kernel, np.float64), np.asarray(kernel, np.float64)
    keys, targets = np.asarray(keys, np.float64), np.asarray(targets, np.float64)
    if keep_keys is not None and len(keep_keys):
        keep_keys = np.asarray(keep_keys, np.float64)
        keys = np.concatenate([keys, keep_keys])
        targets = np.concatenate([targets, keep_keys @ kernel])
    return 2 * lam * (new_kernel - kernel) + 2 * keys.T @ (keys @ new_kernel - targets)
