"""SD v1.4 weight files: keras-cv's get_file path, a local directory, and the errors."""

import hashlib
import os

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from keras_sd_interp.models import weights


def write_legacy_h5(model, path):
    """Writes `model`'s weights with Keras' legacy h5 writer (the format of keras-cv's files)."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_local_directory_missing_file_names_file_and_flag(tmp_path):
    with pytest.raises(weights.MissingWeightsError) as error:
        weights.sd14_weight_path("diffusion_model", weights_dir=str(tmp_path))
    assert "kcv_diffusion_model.h5 is missing from --weights_dir=" in str(error.value)
    assert "kcv_decoder.h5" in str(error.value)  # says what the directory must hold


def test_local_directory_file_is_used(tmp_path):
    (tmp_path / "kcv_decoder.h5").write_bytes(b"x")
    path = weights.sd14_weight_path("decoder", weights_dir=str(tmp_path))
    assert path == os.path.join(str(tmp_path), "kcv_decoder.h5")


def test_download_path_uses_keras_get_file_cache_and_hash(tmp_path, monkeypatch):
    # A file already in Keras' cache with the right SHA-256 is used without any network access;
    # this is the code path that downloads the real files online.
    cache = tmp_path / "cache"
    (cache / "datasets").mkdir(parents=True)
    payload = b"pretend weights"
    (cache / "datasets" / "kcv_decoder.h5").write_bytes(payload)
    entry = weights.WeightFile(
        "kcv_decoder.h5", "http://127.0.0.1:9/kcv_decoder.h5", hashlib.sha256(payload).hexdigest()
    )
    monkeypatch.setitem(weights.SD14_FILES, "decoder", entry)
    path = weights.sd14_weight_path("decoder", cache_dir=str(cache))
    assert open(path, "rb").read() == payload


def test_offline_without_files_is_one_clear_error(tmp_path, monkeypatch):
    entry = weights.WeightFile("kcv_encoder.h5", "http://127.0.0.1:9/kcv_encoder.h5", "0" * 64)
    monkeypatch.setitem(weights.SD14_FILES, "text_encoder", entry)
    with pytest.raises(weights.MissingWeightsError, match="Offline, pass --weights_dir=DIR"):
        weights.sd14_weight_path("text_encoder", cache_dir=str(tmp_path))


def test_unknown_component():
    with pytest.raises(ValueError, match="unknown component 'vae'"):
        weights.sd14_weight_path("vae")


@pytest.mark.long  # 16 s
def test_tiny_unet_roundtrip_through_legacy_h5(tmp_path, tiny_unet):
    from keras_sd_interp.models import load_unet
    from tests.conftest import random_unet_inputs

    path = str(tmp_path / "tiny_unet.h5")
    write_legacy_h5(tiny_unet, path)
    other = load_unet("tiny", 32, 64, 5, random_weights=True)
    other.load_weights(path)
    inputs = random_unet_inputs(tiny_unet, 2)
    np.testing.assert_array_equal(other(inputs), tiny_unet(inputs))


@pytest.mark.slow
def test_keras_cv_model_loads_into_rebuild_through_legacy_h5(tmp_path):
    """keras-cv's own DiffusionModel (random) -> legacy .h5 -> the rebuilt U-Net: same output."""
    from keras_cv.src.models.stable_diffusion.diffusion_model import DiffusionModel

    from keras_sd_interp.models import load_unet
    from tests.conftest import random_unet_inputs

    keras.backend.clear_session()
    keras.utils.set_random_seed(2)
    reference = DiffusionModel(128, 128, 4, download_weights=False)
    reference_names = [layer.name for layer in reference.layers]
    path = str(tmp_path / "kcv_diffusion_model.h5")
    write_legacy_h5(reference, path)
    inputs = random_unet_inputs(reference, 2, seed=3)
    expected = reference(inputs).numpy()
    del reference
    keras.backend.clear_session()  # so Keras auto-names restart, as in a fresh process
    rebuilt = load_unet("sd14", 128, 128, 4, weights_dir=str(tmp_path))
    assert [layer.name for layer in rebuilt.layers] == reference_names
    assert len(rebuilt.layers) == 66
    np.testing.assert_allclose(rebuilt(inputs).numpy(), expected, atol=1e-5, rtol=0)
    assert np.abs(rebuilt(inputs).numpy() - expected).max() < 1e-5
