"""Index arguments (latents, channels, features): checked, never read from the end.

    check_indices("latent", [3, 7], 1536)       # -> [3, 7]
    check_indices("latent", -1, 1536)           # ValueError: ... latents are 0..1535

Python and TensorFlow read a negative index from the end, so `-1` would silently pick the
last latent or channel; every method that takes such an index checks it here first.
"""

import numbers


def check_index(kind, value, size=None, owner=""):
    """One index: an int (not a bool) in 0..size-1 (>= 0 when size is None) -> int. `owner`
    names what is indexed in the message ("site 'conv_9'")."""
    valid = f"0..{size - 1}" if size is not None else "0 or more"
    where = f" for {owner}" if owner else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{kind} {value!r} is not an integer index: give an int in {valid}")
    if value < 0 or (size is not None and value >= size):
        what = f"{kind}s are {valid}" if size is not None else "negative indices would count " \
            "from the end"
        raise ValueError(f"{kind} {int(value)} is out of range{where}: {what}")
    return int(value)


def check_indices(kind, values, size=None):
    """An int or a non-empty list of ints, each in 0..size-1 -> list of int (in order)."""
    listed = [values] if isinstance(values, numbers.Number) else list(
        values.tolist() if hasattr(values, "tolist") else values)
    if not listed:
        raise ValueError(f"no {kind} given: give one or more {kind}s"
                         + (f" in 0..{size - 1}" if size is not None else ""))
    return [check_index(kind, value, size) for value in listed]
