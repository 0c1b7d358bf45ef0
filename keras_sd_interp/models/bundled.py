"""The bundled small model's files, shipped inside the package (`keras_sd_interp/assets/tiny/`).

- `weights.npz`: every component's weights as float16 arrays, keyed "{component}/{index:04d}"
  in `model.get_weights()` order (components: unet, text_encoder, vae_encoder, decoder);
- `record.json`: how they were made (command, seed, data, metrics) and what the pipeline needs
  (latent scale, vocabulary, context length).

Both are written by `scripts/train_tiny.py` (`keras_sd_interp.training.tiny.TinyTrainer.export`).
"""

import json
import os
import zipfile

import numpy as np

from keras_sd_interp import io

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tiny")
WEIGHTS_FILE = "weights.npz"
RECORD_FILE = "record.json"
COMPONENTS = ("unet", "text_encoder", "vae_encoder", "decoder")
RECORD_KEYS = ("latent_scale", "max_length", "text_layers")  # what the pipeline reads


def _missing(path):
    bundle_dir = os.path.dirname(path)
    if os.path.abspath(bundle_dir) != os.path.abspath(ASSETS_DIR):
        return FileNotFoundError(
            f"{bundle_dir!r} is not a tiny-model bundle ({path} is missing): give a folder "
            f"written by scripts/train_tiny.py (its --bundle_dir), holding {WEIGHTS_FILE} and "
            f"{RECORD_FILE}"
        )
    return FileNotFoundError(
        f"the bundled tiny model is not in this install ({path} is missing); train it with "
        "`python scripts/train_tiny.py`, or use random weights (random_weights=True; in the "
        "scripts that take --model, the --random_weights flag)"
    )


def _corrupt(path, error):
    return ValueError(
        f"{path} is not a readable tiny-model bundle file ({type(error).__name__}: "
        f"{str(error)[:120]}); re-export it with scripts/train_tiny.py --export_only"
    )


def bundle_problem(bundle_dir):
    """None when `bundle_dir` holds a readable record and a zip archive of weights (cheap: no
    model), else a sentence saying what is wrong."""
    if not os.path.isdir(bundle_dir):
        return (f"folder {bundle_dir!r} does not exist" if not os.path.exists(bundle_dir)
                else f"{bundle_dir!r} is a file, not a bundle folder")
    try:
        read_record(bundle_dir)
    except (FileNotFoundError, ValueError) as error:
        return str(error)
    weights = os.path.join(bundle_dir, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        return str(_missing(weights))
    if not zipfile.is_zipfile(weights):
        return str(_corrupt(weights, ValueError("not a .npz (zip) archive")))
    return None


def bundle_dir_checker():
    """An absl flag validator: the flag must name a bundle folder (see `bundle_problem`)."""
    from absl import flags

    def checker(bundle_dir):
        problem = bundle_problem(bundle_dir)
        if problem:
            raise flags.ValidationError(problem)
        return True

    return checker


def read_record(bundle_dir=ASSETS_DIR):
    """The bundle's record (dict); raises FileNotFoundError naming the file if absent, and
    ValueError naming it if it is not JSON."""
    path = os.path.join(bundle_dir, RECORD_FILE)
    if not os.path.isfile(path):
        raise _missing(path)
    try:
        with open(path) as f:
            record = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise _corrupt(path, error) from error
    missing = [key for key in RECORD_KEYS if not isinstance(record, dict) or key not in record]
    if missing:
        raise _corrupt(path, ValueError(f"no {', '.join(missing)}"))
    return record


def load_component(model, component, bundle_dir=ASSETS_DIR):
    """Sets `model`'s weights from the bundle's arrays of `component` (cast to float32)."""
    path = os.path.join(bundle_dir, WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise _missing(path)
    try:
        with np.load(path) as arrays:
            keys = sorted(key for key in arrays.files if key.startswith(component + "/"))
            values = [arrays[key].astype(np.float32) for key in keys]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise _corrupt(path, error) from error
    expected = len(model.weights)
    if len(values) != expected:
        raise ValueError(
            f"{path} holds {len(values)} arrays for {component!r} but the model has {expected} "
            "weights: the bundle and the code disagree; retrain with scripts/train_tiny.py"
        )
    model.set_weights(values)
    return model


def load_tiny_unet_weights(unet, bundle_dir=ASSETS_DIR):
    """Loads the bundled tiny U-Net weights into `unet` (an SDUNet with the tiny config)."""
    return load_component(unet, "unet", bundle_dir)


def save_bundle(models, record, bundle_dir=ASSETS_DIR):
    """Writes {component: keras.Model} as float16 `weights.npz` and the record as JSON."""
    arrays = {
        f"{component}/{index:04d}": value.astype(np.float16)
        for component, model in models.items()
        for index, value in enumerate(model.get_weights())
    }
    with io.atomic_path(os.path.join(bundle_dir, WEIGHTS_FILE)) as tmp:
        np.savez_compressed(tmp, **arrays)
    io.save_json(os.path.join(bundle_dir, RECORD_FILE), record)
