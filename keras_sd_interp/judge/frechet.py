"""The Frechet judge distance: the Frechet (2-Wasserstein) distance between Gaussians fitted to
two sets of judge features. It is the FID formula with our Fashion-MNIST judge's penultimate
features in place of Inception's, so its values are not comparable with published FIDs.
"""

import numpy as np


def _sqrtm_psd(matrix):
    """Square root of a symmetric positive semi-definite matrix (D, D) via its eigendecomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance_from_features(features_a, features_b):
    """Frechet distance between Gaussian fits of two feature sets (N_a, D) and (N_b, D).

    d = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2). Returns a float >= 0.
    """
    features_a = np.asarray(features_a, np.float64)
    features_b = np.asarray(features_b, np.float64)
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"need two (N, D) feature arrays with the same D, got "
                         f"{features_a.shape} and {features_b.shape}")
    if min(len(features_a), len(features_b)) < 2:
        raise ValueError("each feature set needs at least 2 rows to estimate a covariance")
    mean_a, mean_b = features_a.mean(0), features_b.mean(0)
    cov_a = np.cov(features_a, rowvar=False)
    cov_b = np.cov(features_b, rowvar=False)
    sqrt_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(sqrt_a @ cov_b @ sqrt_a)
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * cross)
    return float(max(distance, 0.0))
