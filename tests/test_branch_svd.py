"""Branch-specialization SVD: paper mode against the course's two functions, the corrected
grouping by filter, and the check that conv b really consumes conv a."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.lens import taps
from keras_sd_interp.circuits import branch_svd
from keras_sd_interp.circuits.branch_svd import corrected_branch_svd, paper_branch_svd


def course_slices(kernel_a, kernel_b, concat):
    out_a = kernel_a.shape[3]
    kernel_b = kernel_b[:, :, -out_a:, :] if concat else kernel_b[:, :, :out_a, :]
    return np.reshape(kernel_a, (out_a, -1)), np.reshape(kernel_b, (out_a, -1))


def course_branch_svd_tf(kernel_a, kernel_b, concat):
    """visualize_branch_svd_combined_tf without the plot (in float64, to compare to 1e-6)."""
    a, b = course_slices(kernel_a.astype(np.float64), kernel_b.astype(np.float64), concat)
    a, b = tf.constant(a), tf.constant(b)
    m = tf.matmul(tf.transpose(tf.abs(a)), tf.abs(b))
    s, u, v = tf.linalg.svd(m)
    left = tf.matmul(tf.transpose(u[:, :2]), tf.transpose(tf.abs(a)))
    right = tf.matmul(tf.abs(b), v[:, :2])
    return left.numpy(), right.numpy()


def course_branch_svd_numpy(kernel_a, kernel_b, concat):
    """visualize_branch_svd_combined: the same, with M = |A.T @ B|."""
    a, b = course_slices(kernel_a.astype(np.float64), kernel_b.astype(np.float64), concat)
    u, s, vh = np.linalg.svd(np.abs(a.T @ b))
    return u[:, :2].T @ np.abs(a).T, np.abs(b) @ vh[:2].T


def assert_same_up_to_sign(result, expected_left, expected_right):
    signs = np.sign(np.sum(expected_left * result.left, axis=1))
    scale = np.abs(expected_left).max()
    np.testing.assert_allclose(result.left, expected_left * signs[:, None], atol=1e-6 * scale)
    scale = np.abs(expected_right).max()
    np.testing.assert_allclose(result.right, expected_right * signs[None, :], atol=1e-6 * scale)


@pytest.mark.parametrize("variant, course", [("tf", course_branch_svd_tf),
                                             ("numpy", course_branch_svd_numpy)])
def test_paper_mode_matches_the_course_tiny(tiny_unet, variant, course):
    result = branch_svd(tiny_unet, 9, 38, mode="paper", concat=True, variant=variant)
    expected = course(taps.conv_kernel(tiny_unet, 9), taps.conv_kernel(tiny_unet, 38), True)
    assert result.left.shape == (2, 64) and result.right.shape == (64, 2)
    assert result.channels == (96, 160)
    assert_same_up_to_sign(result, *expected)


@pytest.mark.long  # builds the full-size SD v1.4 U-Net (about 25 s)
def test_paper_mode_matches_the_course_sd14_shapes(sd14_unet):
    result = branch_svd(sd14_unet, 0, 1, mode="paper", concat=False)
    expected = course_branch_svd_tf(taps.conv_kernel(sd14_unet, 0),
                                    taps.conv_kernel(sd14_unet, 1), False)
    assert result.left.shape == (2, 320)
    assert_same_up_to_sign(result, *expected)


@pytest.mark.slow
def test_paper_figure_9_38_sd14(sd14_unet):
    result = branch_svd(sd14_unet, 9, 38, mode="paper", concat=True)
    expected = course_branch_svd_tf(taps.conv_kernel(sd14_unet, 9),
                                    taps.conv_kernel(sd14_unet, 38), True)
    assert result.channels == (1280, 1920)
    assert_same_up_to_sign(result, *expected)


def test_corrected_points_are_filters_and_paper_points_are_not():
    rng = np.random.default_rng(0)
    kernel_a = np.zeros((3, 3, 8, 16))
    kernel_a[:, :, :, 5] = rng.normal(size=(3, 3, 8))  # only filter 5 has weights
    kernel_b = rng.normal(size=(3, 3, 16, 12))
    corrected = corrected_branch_svd(kernel_a, kernel_b, (0, 16))
    assert np.flatnonzero(np.abs(corrected.left).sum(axis=0) > 1e-12).tolist() == [5]
    paper = paper_branch_svd(kernel_a, kernel_b, concat=False)
    assert np.flatnonzero(np.abs(paper.left).sum(axis=0) > 1e-12).tolist() != [5]


def test_corrected_uses_the_channels_the_graph_connects(tiny_unet):
    result = branch_svd(tiny_unet, 9, 38)
    assert result.channels == (96, 160)
    with pytest.raises(ValueError, match=r"conv 12 does not consume conv 9's output: .*conv 11"):
        branch_svd(tiny_unet, 9, 12)
    with pytest.raises(ValueError, match=r"conv 52 out of range"):
        branch_svd(tiny_unet, 9, 52)
