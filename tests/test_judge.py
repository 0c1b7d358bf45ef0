"""The Fashion-MNIST judge: shipped accuracy, features, the Frechet distance, and bad weight files."""

import numpy as np
import pytest

from keras_sd_interp.data import load_fashion_mnist
from keras_sd_interp.judge import (
    build_judge,
    frechet_distance_from_features,
    frechet_judge_distance,
    load_judge,
    penultimate_features,
    predict_classes,
)


@pytest.fixture(scope="module")
def judge():
    return load_judge()


@pytest.fixture(scope="module")
def test_set():
    return load_fashion_mnist("test")


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3)) * np.array([1.0, 2.0, 0.5])
    b = rng.normal(size=(20000, 3)) * np.array([1.0, 1.0, 0.5]) + np.array([3.0, 0.0, 0.0])
    # Diagonal covariances: |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 = 9 + 1 = 10.
    assert frechet_distance_from_features(a, b) == pytest.approx(10.0, rel=0.02)
    assert frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same D"):
        frechet_distance_from_features(a, b[:, :2])


@pytest.mark.fashion_mnist
def test_shipped_judge_is_at_least_91_percent_on_the_real_test_set(judge, test_set):
    images, labels = test_set
    predicted, probabilities = predict_classes(judge, images)
    accuracy = np.mean(predicted == labels)
    assert accuracy >= 0.91, accuracy
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


@pytest.mark.fashion_mnist
def test_penultimate_features_and_frechet_judge_distance(judge, test_set):
    images, labels = test_set
    features = penultimate_features(judge, images[:300])
    assert features.shape == (300, 128) and np.all(features >= 0)  # after a ReLU
    # Two halves of the test set are close; trousers against bags are far apart.
    halves = frechet_judge_distance(judge, images[:5000:5], images[5000::5])
    trousers_vs_bags = frechet_judge_distance(judge, images[labels == 1][:500], images[labels == 8][:500])
    assert halves < 0.1 * trousers_vs_bags, (halves, trousers_vs_bags)


def test_missing_or_corrupt_weight_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_judge(str(tmp_path / "nothing.weights.h5"))
    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match="corrupt or does not match"):
        load_judge(str(corrupt))


@pytest.mark.fashion_mnist
def test_untrained_judge_is_near_chance(test_set):
    """The shipped accuracy comes from training, not from the architecture alone."""
    images, labels = test_set
    predicted, _ = predict_classes(build_judge(), images[:1000])
    assert np.mean(predicted == labels[:1000]) < 0.4


@pytest.mark.fashion_mnist
def test_shipping_writes_float16_weights_and_scores_the_shipped_file(judge, tmp_path):
    import h5py

    from keras_sd_interp.training.judge import ship_judge

    record = ship_judge(judge, {"test_accuracy": 0.9}, str(tmp_path), command="python x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judge.weights.h5", "judge_record.json"]
    with h5py.File(tmp_path / "judge.weights.h5") as f:
        dtypes = set()
        f.visititems(lambda _, item: dtypes.add(item.dtype) if hasattr(item, "dtype") else None)
    assert np.dtype("float32") not in dtypes and np.dtype("float16") in dtypes
    assert record["shipped_float16_test_accuracy"] >= 0.91 and record["command"] == "python x"
    assert list(record)[-2:] == ["command", "data"]
