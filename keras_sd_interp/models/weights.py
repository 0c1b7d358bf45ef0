"""Where the Stable Diffusion v1.4 weight files come from: keras-cv's own origins and hashes
(through `keras.utils.get_file`, which caches and checks them), or a local directory.

A local directory holds the same files under the same names, e.g. copied from
`~/.keras/datasets/` of a machine that has run keras-cv's Stable Diffusion once:

    kcv_diffusion_model.h5  kcv_decoder.h5  kcv_encoder.h5  vae_encoder.h5
    bpe_simple_vocab_16e6.txt.gz   (CLIP's BPE vocabulary; also in the PyPI sdist openai-clip)
"""

import dataclasses
import os

import keras

WEIGHTS_FLAG = "--weights_dir"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    filename: str
    origin: str
    sha256: str


# Copied from keras-cv 0.9 (keras_cv/src/models/stable_diffusion/*.py), the v1.4 checkpoints.
SD14_FILES = {
    "diffusion_model": WeightFile(
        "kcv_diffusion_model.h5",
        "https://huggingface.co/fchollet/stable-diffusion/resolve/main/kcv_diffusion_model.h5",
        "8799ff9763de13d7f30a683d653018e114ed24a6a819667da4f5ee10f9e805fe",
    ),
    "decoder": WeightFile(
        "kcv_decoder.h5",
        "https://huggingface.co/fchollet/stable-diffusion/resolve/main/kcv_decoder.h5",
        "ad350a65cc8bc4a80c8103367e039a3329b4231c2469a1093869a345f55b1962",
    ),
    "text_encoder": WeightFile(
        "kcv_encoder.h5",
        "https://huggingface.co/fchollet/stable-diffusion/resolve/main/kcv_encoder.h5",
        "4789e63e07c0e54d6a34a29b45ce81ece27060c499a709d556c7755b42bb0dc4",
    ),
    "image_encoder": WeightFile(
        "vae_encoder.h5",
        "https://huggingface.co/fchollet/stable-diffusion/resolve/main/vae_encoder.h5",
        "c60fb220a40d090e0f86a6ab4c312d113e115c87c40ff75d11ffcf380aab7ebb",
    ),
    "bpe_vocab": WeightFile(
        "bpe_simple_vocab_16e6.txt.gz",
        "https://github.com/openai/CLIP/blob/main/clip/bpe_simple_vocab_16e6.txt.gz?raw=true",
        "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a",
    ),
}


class MissingWeightsError(FileNotFoundError):
    """A weight file is neither in the given directory nor downloadable."""


class CorruptWeightsError(ValueError):
    """A weight file is there but is not the .h5 file keras-cv ships (or does not fit)."""


def _all_filenames():
    return ", ".join(f.filename for f in SD14_FILES.values())


def sd14_weight_path(component, weights_dir=None, cache_dir=None):
    """Local path of one SD v1.4 file: from `weights_dir` if given, else keras-cv's download.

    Args:
        component: one of "diffusion_model", "decoder", "text_encoder", "image_encoder",
            "bpe_vocab".
        weights_dir: a directory holding the files under keras-cv's names, or None.
        cache_dir: Keras' cache (default `~/.keras`); the file is downloaded there once and
            checked against its SHA-256.

    Raises:
        MissingWeightsError: the file is not in `weights_dir`, or it could not be downloaded.
    """
    if component not in SD14_FILES:
        raise ValueError(f"unknown component {component!r}: choose one of {sorted(SD14_FILES)}")
    weight_file = SD14_FILES[component]
    if weights_dir is not None:
        if not os.path.isdir(weights_dir):
            raise MissingWeightsError(
                f"{WEIGHTS_FLAG}={weights_dir}: " + ("that folder does not exist" if not
                os.path.exists(weights_dir) else "that is a file, not a folder")
                + f"; give a folder holding keras-cv's SD v1.4 files ({_all_filenames()})"
            )
        path = os.path.join(weights_dir, weight_file.filename)
        if not os.path.isfile(path):
            raise MissingWeightsError(
                f"{weight_file.filename} is missing from {WEIGHTS_FLAG}={weights_dir}: that "
                f"directory must hold keras-cv's SD v1.4 files ({_all_filenames()})"
            )
        return path
    try:
        return keras.utils.get_file(
            weight_file.filename,
            weight_file.origin,
            file_hash=weight_file.sha256,
            cache_dir=cache_dir,
        )
    except Exception as error:  # get_file raises bare Exceptions for network failures
        raise MissingWeightsError(
            f"could not get {weight_file.filename} from {weight_file.origin} ({error}). "
            f"Offline, pass {WEIGHTS_FLAG}=DIR with a directory holding {_all_filenames()}"
        ) from error


def load_sd14_weights(model, component, weights_dir=None):
    """Loads SD v1.4's `component` weights (see `sd14_weight_path`) into the Keras `model`.

    Raises:
        MissingWeightsError: as `sd14_weight_path`.
        CorruptWeightsError: the file is not a valid HDF5 file or does not fit the model; the
            message names the file and its expected SHA-256.
    """
    path = checked_sd14_file(component, weights_dir)
    try:
        model.load_weights(path)
    except Exception as error:  # Keras' ValueError names no file
        raise _corrupt(path, component, error) from error
    return model


def checked_sd14_file(component, weights_dir=None):
    """`sd14_weight_path`, plus a check that the file opens as HDF5 (cheap: before a build).

    Raises MissingWeightsError or CorruptWeightsError naming the file.
    """
    import h5py

    path = sd14_weight_path(component, weights_dir)
    try:
        with h5py.File(path, "r"):
            pass
    except Exception as error:  # h5py: OSError "file signature not found", without the path
        raise _corrupt(path, component, error) from error
    return path


def _corrupt(path, component, error):
    weight_file = SD14_FILES[component]
    return CorruptWeightsError(
        f"{path} is not a valid keras-cv {weight_file.filename} ({type(error).__name__}: "
        f"{str(error)[:160]}): re-download it from {weight_file.origin} or check its hash "
        f"(sha256sum should print {weight_file.sha256})"
    )
