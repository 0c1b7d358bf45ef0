"""The bundled small model's weights, shipped inside the package (`keras_sd_interp/assets/tiny/`).

They are made by `scripts/train_tiny.py`; until a trained file is shipped, loading says so.
"""

import os

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tiny")
UNET_WEIGHTS = os.path.join(ASSETS_DIR, "unet.weights.h5")


def load_tiny_unet_weights(unet):
    """Loads the bundled tiny U-Net weights into `unet` (an SDUNet with the tiny config)."""
    if not os.path.isfile(UNET_WEIGHTS):
        raise FileNotFoundError(
            f"the bundled tiny model's weights are not in this install ({UNET_WEIGHTS}); "
            "train them with scripts/train_tiny.py, or pass --random_weights"
        )
    unet.load_weights(UNET_WEIGHTS)
