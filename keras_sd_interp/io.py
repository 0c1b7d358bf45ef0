"""Atomic file writing: every long output goes to a temp file in the same folder, then a rename.

A run that is stopped half-way never leaves a half-written PNG, GIF, JSON or `.npy` behind, so a
sweep can resume by skipping the files that already exist.
"""

import contextlib
import json
import os
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to `path`; renames it onto `path` if the block succeeds.

    The temporary name keeps the file's extension, so writers that pick a format by extension
    (Pillow, matplotlib) still do.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Keep compound suffixes that libraries check, e.g. Keras 3's ".weights.h5".
    suffix = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def png_data_uri(image):
    """A uint8 array (as `save_image` takes) -> "data:image/png;base64,..." for an <img src>.

    For images of a few hundred bytes that belong to one page: inline, they cost no file
    (each file takes a whole filesystem block, 4 KiB here, however small it is).
    """
    import base64
    import io as bytes_io

    buffer = bytes_io.BytesIO()
    _pil_image(image, "png_data_uri").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pil_image(image, caller):
    """A uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> a PIL image."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        raise ValueError(f"{caller} wants a uint8 array, got dtype {image.dtype}")
    return Image.fromarray(image)


def save_image(path, image):
    """Saves a uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as an image file.

    The format follows the extension (.png, .jpg, ...).
    """
    picture = _pil_image(image, "save_image")
    with atomic_path(path) as tmp:
        picture.save(tmp)


def load_image(path, channels=None):
    """An image file (PNG, JPEG, ... through Pillow) or a `.npy` array as a NumPy array.

    channels: 1 (grayscale, (H, W, 1)), 3 (RGB, (H, W, 3)) or None (as stored). Images are
    uint8; a `.npy` comes back as saved (its dtype and shape are the caller's to check)."""
    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {path!r} does not exist")
    if path.endswith(".npy"):
        return np.load(path)
    with Image.open(path) as image:
        if channels is not None:
            image = image.convert("L" if channels == 1 else "RGB")
        array = np.asarray(image)
    return array[..., None] if array.ndim == 2 and channels == 1 else array


def save_gif(path, frames, duration_ms=100, loop=0):
    """Saves a list of uint8 arrays (H, W) or (H, W, 3), all the same shape, as an animated GIF."""
    from PIL import Image

    if len(frames) == 0:
        raise ValueError("save_gif needs at least one frame")
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, save_all=True, append_images=images[1:], duration=duration_ms, loop=loop
        )


def save_figure(path, figure, dpi=100):
    """Saves a matplotlib figure and closes it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(figure)


def save_json(path, obj):
    """Writes `obj` as indented JSON."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


def save_npy(path, array):
    """Writes one array as `.npy`."""
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array))


def save_text(path, text):
    """Writes a text file (an index, a record)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def image_is_valid(path):
    """True if `path` is an image file Pillow can fully decode (a resumed run checks what it
    skips: a zero-byte, truncated or random-bytes PNG is False and gets recomputed)."""
    from PIL import Image

    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return False
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
    except Exception:  # Pillow raises many types for bad files (OSError, SyntaxError, ...)
        return False
    return True
