"""Branch specialization: an SVD of the weights connecting conv a to conv b (OpenAI's
"Branch Specialization", as the course's `branchspecialization.ipynb` applied it).

`paper` mode (the course's `visualize_branch_svd_combined_tf(a, b, concat)`): take conv b's
first (or, with `concat`, last) out_a input channels, `A = reshape(W_a, (out_a, -1))`,
`B = reshape(W_b_slice, (out_a, -1))` (row-major reshapes of (3, 3, in, out) arrays, so a row is
not a filter: the defect), `M = |A|.T @ |B|`, left points `u[:, :2].T @ |A|.T`, right points
`|B| @ v[:, :2]`. The NumPy twin (`variant="numpy"`) takes `M = |A.T @ B|` instead.
Corrected: each row of A is one filter of conv a (9 * in_a weights) and each row of B is the
matching input channel of conv b (9 * out_b weights), and the channels are the ones the graph
really connects (see `lens.graph.input_segments`), so each point is one filter.

Singular vectors have a free sign; here each is flipped so that its points sum to >= 0.
"""

import dataclasses

import numpy as np

from keras_sd_interp.lens import taps
from keras_sd_interp.lens.graph import input_segments


@dataclasses.dataclass
class BranchSVD:
    """left: (2, n) conv a's side; right: (n, 2) conv b's side; n = conv a's filters.

    singular_values: the two largest; channels: conv b's input channels used (start, stop).
    """

    left: np.ndarray
    right: np.ndarray
    singular_values: np.ndarray
    channels: tuple


def _top2_of_product(left_factor, right_factor):
    """Top-2 SVD of M = left_factor @ right_factor, M (m, n) of rank <= k, factors (m, k), (k, n).

    QR of both factors reduces the SVD to a (k, k) one: exact and fast for SD's 5760x5760 M.
    Returns u (m, 2), s (2,), v (n, 2).
    """
    q_left, r_left = np.linalg.qr(left_factor)
    q_right, r_right = np.linalg.qr(right_factor.T)
    u_small, s, vh_small = np.linalg.svd(r_left @ r_right.T)
    return q_left @ u_small[:, :2], s[:2], q_right @ vh_small[:2].T


def _project(abs_a, abs_b, u, v):
    left = u.T @ abs_a.T  # (2, n)
    right = abs_b @ v  # (n, 2)
    signs = np.where(left.sum(axis=1) < 0, -1.0, 1.0)
    return left * signs[:, None], right * signs[None, :]


def paper_branch_svd(kernel_a, kernel_b, concat=True, variant="tf"):
    """The course's projections from two kernels (3, 3, in, out); see the module doc."""
    out_a = kernel_a.shape[-1]
    in_b = kernel_b.shape[2]
    if in_b < out_a:
        raise ValueError(f"conv b has {in_b} input channels, fewer than conv a's {out_a} filters")
    channels = (in_b - out_a, in_b) if concat else (0, out_a)
    matrix_a = np.reshape(kernel_a, (out_a, -1)).astype(np.float64)
    matrix_b = np.reshape(kernel_b[:, :, channels[0] : channels[1], :], (out_a, -1))
    matrix_b = matrix_b.astype(np.float64)
    abs_a, abs_b = np.abs(matrix_a), np.abs(matrix_b)
    if variant == "tf":
        u, s, v = _top2_of_product(abs_a.T, abs_b)
    elif variant == "numpy":
        u_full, s, vh = np.linalg.svd(np.abs(matrix_a.T @ matrix_b), full_matrices=False)
        u, s, v = u_full[:, :2], s[:2], vh[:2].T
    else:
        raise ValueError(f"variant {variant!r} is not one of ('tf', 'numpy')")
    left, right = _project(abs_a, abs_b, u, v)
    return BranchSVD(left, right, s, channels)


def connecting_channels(unet, conv_a, conv_b):
    """The input channels (start, stop) of conv b that carry conv a's filters 0..out_a-1."""
    out_a = taps.conv_inventory(unet)[taps.check_conv_index(conv_a)].kernel_shape[-1]
    segments = input_segments(unet, taps.check_conv_index(conv_b))
    for start, stop, source, _ in segments:
        if source == conv_a and stop - start == out_a:
            return start, stop
    readers = ", ".join(f"channels {a}..{b - 1} from conv {s}" for a, b, s, _ in segments)
    raise ValueError(
        f"conv {conv_b} does not consume conv {conv_a}'s output: its inputs are {readers}; "
        f"choose --conv_a among those convs"
    )


def corrected_branch_svd(kernel_a, kernel_b, channels):
    """Filter-grouped projections; `channels` = conv b's input channels fed by conv a."""
    out_a = kernel_a.shape[-1]
    matrix_a = np.transpose(kernel_a, (3, 0, 1, 2)).reshape(out_a, -1).astype(np.float64)
    sliced = kernel_b[:, :, channels[0] : channels[1], :]
    matrix_b = np.transpose(sliced, (2, 0, 1, 3)).reshape(out_a, -1).astype(np.float64)
    abs_a, abs_b = np.abs(matrix_a), np.abs(matrix_b)
    u, s, v = _top2_of_product(abs_a.T, abs_b)
    left, right = _project(abs_a, abs_b, u, v)
    return BranchSVD(left, right, s, tuple(channels))


def branch_svd(unet, conv_a, conv_b, mode="corrected", concat=True, variant="tf"):
    """Branch-specialization projections between conv `conv_a` and conv `conv_b` of `unet`.

    `paper` slices conv b's input by `concat` (last out_a channels) as the course did; corrected
    finds the channels that really carry conv a's output and fails if there are none.
    """
    kernel_a, kernel_b = taps.conv_kernel(unet, conv_a), taps.conv_kernel(unet, conv_b)
    if mode == "paper":
        return paper_branch_svd(kernel_a, kernel_b, concat, variant)
    if mode != "corrected":
        raise ValueError(f"mode {mode!r} is not one of ('paper', 'corrected')")
    return corrected_branch_svd(kernel_a, kernel_b, connecting_channels(unet, conv_a, conv_b))


# The filters the paper looked at on its branch plot (conv 38's side, conv 9's side), SD v1.4.
PAPER_BRANCH_FILTERS = {"b": (355, 306, 426), "a": (291, 330, 427)}


def outlying_points(points, count=3):
    """Indices of the `count` points (n, 2) farthest from their mean."""
    distances = np.linalg.norm(points - points.mean(axis=0), axis=1)
    return tuple(int(i) for i in np.argsort(distances)[::-1][:count])


def branch_filters(result):
    """The filters to mark and visualize: the paper's where they exist, else the outliers.

    Returns (conv a's filters, conv b's points), each a tuple of indices."""
    n = result.right.shape[0]
    if max(PAPER_BRANCH_FILTERS["a"] + PAPER_BRANCH_FILTERS["b"]) < n:
        return PAPER_BRANCH_FILTERS["a"], PAPER_BRANCH_FILTERS["b"]
    return outlying_points(result.left.T), outlying_points(result.right)


def check_marks(unet, conv_a, marked_a=(), marked_b=()):
    """Raises ValueError naming the marks that index no point of the branch plots (one point
    per filter of conv `conv_a` on each)."""
    check_mark_range(taps.conv_kernel(unet, conv_a).shape[-1], conv_a, marked_a, marked_b)


def check_mark_range(count, conv_a, marked_a=(), marked_b=()):
    """Raises ValueError naming the marks outside 0..count-1 (`count` filters of conv_a)."""
    for side, marks in ((f"conv {conv_a}'s side", marked_a), ("the other side", marked_b)):
        bad = [int(i) for i in marks if not 0 <= int(i) < count]
        if bad:
            raise ValueError(f"marks {bad} on {side} out of range: conv {conv_a} has filters "
                             f"0..{count - 1}, one point each on both plots")
