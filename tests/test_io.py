"""Atomic writers: nothing half-written, the usual file mode, Keras-friendly temp names."""

import os
import stat

import numpy as np
import pytest

from keras_sd_interp import io


def test_atomic_path_keeps_compound_suffix_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model.weights.h5"
    with io.atomic_path(target) as tmp:
        assert tmp.endswith(".weights.h5") and tmp != str(target)
        open(tmp, "w").write("x")
    assert target.read_text() == "x"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()
    with pytest.raises(RuntimeError):
        with io.atomic_path(tmp_path / "broken.png"):
            raise RuntimeError("stopped half-way")
    assert sorted(os.listdir(tmp_path)) == ["model.weights.h5"]


def test_png_data_uri_decodes_to_the_image():
    import base64
    import io as bytes_io

    from PIL import Image

    image = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    uri = io.png_data_uri(image)
    assert uri.startswith("data:image/png;base64,")
    decoded = Image.open(bytes_io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    np.testing.assert_array_equal(np.asarray(decoded), image)
    with pytest.raises(ValueError, match="uint8.*float32"):
        io.png_data_uri(image.astype(np.float32))


def test_save_image_accepts_a_single_channel(tmp_path):
    from PIL import Image

    image = np.arange(32 * 64, dtype=np.uint16).reshape(32, 64, 1).astype(np.uint8)
    io.save_image(tmp_path / "a.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), image[..., 0])
    with pytest.raises(ValueError, match="uint8"):
        io.save_image(tmp_path / "b.png", image.astype(np.float32))


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current
