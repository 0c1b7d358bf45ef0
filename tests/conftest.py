"""Shared fixtures: models are built once per test session (building one takes seconds).

Tests marked `fashion_mnist` need the real Fashion-MNIST. Where no copy can be reached (the
Debian package `dataset-fashion-mnist`, `$FASHION_MNIST_DIR`, Keras's cache or download,
tensorflow-datasets) they skip with the loader's reason; with `KERAS_SD_INTERP_REQUIRE_DATA=1`
(set by `.ci/run`) they fail instead, so CI still proves them.
"""

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

REQUIRE_DATA_VARIABLE = "KERAS_SD_INTERP_REQUIRE_DATA"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "fashion_mnist: needs the real Fashion-MNIST; skips where no copy can be reached "
        f"(fails instead under {REQUIRE_DATA_VARIABLE}=1, as .ci/run sets)",
    )


@functools.cache
def fashion_mnist_missing():
    """None when both splits of the real Fashion-MNIST load, else the loader's error text.
    Checked once per session; the loader is asked as the tests will ask it."""
    from keras_sd_interp.data import load_fashion_mnist

    try:
        for split in ("test", "train"):
            load_fashion_mnist(split)
    except FileNotFoundError as error:
        return str(error)
    return None


# Test files of minutes, run first: `-n 2 --dist loadfile` hands whole files to the two workers
# in collection order, so a long file collected last (test_notebooks.py sorts late) ran on after
# the other worker had finished. Last measured (--durations, idle CPU): the notebooks 300 s in
# all, test_tiny_model.py 90 s.
RUN_FIRST = ("test_notebooks.py", "test_tiny_model.py")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    """Marks every `long` test `slow` too (out of the fast set; `.ci/run` runs `-m long` after
    it), and moves the files of RUN_FIRST to the front, in that order (a stable sort: every
    file's tests stay together and in their order)."""
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(pytest.mark.slow)
    rank = {name: index for index, name in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(RUN_FIRST)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skips (or, under KERAS_SD_INTERP_REQUIRE_DATA=1, fails) a `fashion_mnist` test before its
    fixtures run when the real data cannot be reached."""
    if item.get_closest_marker("fashion_mnist") is None:
        return
    missing = fashion_mnist_missing()
    if missing is None:
        return
    required = os.environ.get(REQUIRE_DATA_VARIABLE, "")
    if required not in ("", "0", "1"):
        pytest.fail(f"{REQUIRE_DATA_VARIABLE}={required!r}: valid values are 0 and 1",
                    pytrace=False)
    reason = f"needs the real Fashion-MNIST (Debian package dataset-fashion-mnist): {missing}"
    if required == "1":
        pytest.fail(f"{REQUIRE_DATA_VARIABLE}=1 and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_unet():
    """Randomly initialised tiny U-Net at 32x64 (latent 8x16x4), context length 5."""
    import keras

    from keras_sd_interp.models import load_unet

    keras.utils.set_random_seed(0)
    return load_unet("tiny", 32, 64, 5, random_weights=True)


@pytest.fixture(scope="session")
def sd14_unet():
    """Randomly initialised SD v1.4-sized U-Net at 64x64 (latent 8x8x4), context length 3."""
    import keras

    from keras_sd_interp.models import load_unet

    keras.utils.set_random_seed(1)
    return load_unet("sd14", 64, 64, 3, random_weights=True)


@pytest.fixture(scope="session")
def sd14_mini(clip_bpe_dir):
    """SD v1.4 at size "mini" (its layers, site names, 70 components and 12 text layers at small
    widths; random weights) at 64x64 with CLIP's real BPE tokenizer: the fast tests' SD v1.4."""
    import keras

    from keras_sd_interp.models import load_pipeline

    keras.utils.set_random_seed(2)
    return load_pipeline("sd14", 64, 64, weights_dir=clip_bpe_dir, random_weights=True,
                         size="mini")


def random_unet_inputs(unet, batch_size, seed=0):
    """[latent, timestep_embedding, context] drawn from N(0, 1) for `unet`'s input shapes."""
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(batch_size,) + tuple(x.shape[1:])).astype("float32")
        for x in unet.inputs
    ]


BPE_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "keras_sd_interp", "clip_bpe")


def _bpe_from_openai_clip_sdist(folder):
    """Takes CLIP's BPE file out of the PyPI sdist `openai-clip` (pip's own client), into
    `folder`; returns the error text, or None."""
    import subprocess
    import sys
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as download:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "openai-clip==1.0.1", "-d", download], capture_output=True, text=True, timeout=300)
        if done.returncode:
            return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "pip failed"
        with tarfile.open(os.path.join(download, os.listdir(download)[0])) as sdist:
            member = next(m for m in sdist.getmembers()
                          if m.name.endswith("clip/bpe_simple_vocab_16e6.txt.gz"))
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "bpe_simple_vocab_16e6.txt.gz"), "wb") as out:
                out.write(sdist.extractfile(member).read())
    return None


@pytest.fixture(scope="session")
def clip_bpe_dir():
    """A folder holding CLIP's BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`, SHA-256 checked),
    usable as `--weights_dir` of a random-weights SD v1.4 pipeline: from $CLIP_BPE_DIR, from
    ~/.cache/keras_sd_interp/clip_bpe, or taken out of the PyPI sdist `openai-clip` there.
    Skips (fails under KERAS_SD_INTERP_REQUIRE_DATA=1) when none can be had."""
    import hashlib

    from keras_sd_interp.models.weights import SD14_FILES

    expected = SD14_FILES["bpe_vocab"]
    folder = os.environ.get("CLIP_BPE_DIR", BPE_CACHE)
    path = os.path.join(folder, expected.filename)
    problem = None
    if not os.path.isfile(path):
        problem = _bpe_from_openai_clip_sdist(folder)
    if problem is None:
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != expected.sha256:
                problem = f"{path} is not CLIP's BPE file (SHA-256 differs)"
    if problem is None:
        return folder
    reason = f"needs CLIP's BPE vocabulary (pip download openai-clip): {problem}"
    if os.environ.get(REQUIRE_DATA_VARIABLE, "") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
