"""Sites: the named points inside the U-Net where tensors can be recorded or edited in flight.

Every rebuilt layer passes the tensors worth seeing through `site(name, tensor)`. With no hook
active this returns the tensor untouched (a plain forward costs nothing extra). Inside a
`hooks(...)` block, a site first applies the edits registered for its name, then records the
result. Hooks are plain Python state read while the layer's `call` runs, so they work eagerly
and inside `tf.function` (where they are baked in when the function is traced) without
rebuilding the model.

    with hooks(record=["res_block_3.conv1"]) as cache:
        eps = unet([latent, t_emb, context])
    cache["res_block_3.conv1"]  # (batch, h, w, 640)

    with hooks(edits={"spatial_transformer_3.attn2.probs": replace_with(probs)}):
        eps = unet([latent, t_emb, context])
"""

import contextlib

import numpy as np
import tensorflow as tf

from keras_sd_interp.hook_points import active, located, location, site  # noqa: F401
from keras_sd_interp.lens.selection import SiteSelector


class HookContext:
    """The edits and the records of one `hooks(...)` block.

    Attributes:
        record: a `SiteSelector` of the sites whose tensors are kept in `cache`.
        edits: list of (SiteSelector, [functions tensor -> tensor]), applied in order.
        cache: dict site name -> the tensor that flowed through that site (after edits).
        seen: the site names the block's calls reached.
    """

    def __init__(self, record=(), edits=None):
        self.record = SiteSelector(record)
        self.edits = [(SiteSelector(selection, what="edit"),
                       list(fns) if isinstance(fns, (list, tuple)) else [fns])
                      for selection, fns in (edits or {}).items()]
        self.cache = {}
        self.seen = set()

    def apply(self, name, tensor):
        self.seen.add(name)
        for selector, fns in self.edits:
            if selector(name):
                for fn in fns:
                    tensor = checked_output(fn, name, tensor, fn(tensor))
        if self.record(name):
            self.cache[name] = tensor
        return tensor

    def unmatched(self):
        """Selected names and globs that no site reached by the block matches."""
        selectors = [self.record] + [selector for selector, _ in self.edits]
        return sorted({name for selector in selectors for name in selector.unmatched(self.seen)})


def _hook_name(fn):
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def checked_output(fn, name, before, after):
    """What hook `fn` returned at site `name`, checked against the tensor it was given: a
    tensor (or array) of the same shape and dtype. NumPy arrays and lists are converted; None,
    another shape or another dtype raise TypeError / ValueError naming the hook and the site
    (TensorFlow's own error would name neither)."""
    if after is None:
        raise TypeError(f"hook {_hook_name(fn)} at site {name!r} returned None: return the "
                        f"(edited) tensor, shape {tuple(before.shape)}")
    if not tf.is_tensor(after):
        try:
            after = tf.convert_to_tensor(np.asarray(after), dtype=before.dtype)
        except (TypeError, ValueError) as error:
            raise TypeError(f"hook {_hook_name(fn)} at site {name!r} returned "
                            f"{type(after).__name__}, not a tensor of {before.dtype.name} "
                            f"({error})") from None
    if after.dtype != before.dtype:
        raise TypeError(f"hook {_hook_name(fn)} at site {name!r} returned {after.dtype.name}; "
                        f"the site carries {before.dtype.name} (cast with tf.cast)")
    if not after.shape.is_compatible_with(before.shape):
        raise ValueError(f"hook {_hook_name(fn)} at site {name!r} returned shape "
                         f"{tuple(after.shape)}; the site carries {tuple(before.shape)}")
    return after


@contextlib.contextmanager
def hooks(record=(), edits=None):
    """Activates recording and editing of sites for the block; yields the cache dict.

    Args:
        record: the sites to record: a name, glob, predicate, "all", or a list of them
            (the selection `lens.trace` takes; addresses need the model: `taps.run_with_cache`).
        edits: dict {selection: function (or list of functions) tensor -> tensor}.

    Yields:
        dict site name -> recorded tensor, filled while the block runs the model.

    Raises:
        ValueError after the block: a selected name or glob that no reached site matches.
    """
    context = HookContext(record, edits)
    with active(context):
        yield context.cache
    missing = context.unmatched()
    if missing and context.seen:
        raise ValueError(
            f"these sites were never reached by the forward pass: {missing}; "
            "see keras_sd_interp.lens.list_sites(pipe or unet) for valid names"
        )


def _check_positions(kind, positions, size):
    """Raises ValueError unless every position is in 0..size-1 (when the size is static)."""
    if size is None:
        return
    bad = [int(p) for p in positions if not 0 <= int(p) < size]
    if bad:
        raise ValueError(f"{kind} {bad} out of range: this site has {kind} 0..{size - 1}")


def _selection_mask(tensor, batch=None, axis=None, indices=None):
    """Boolean tensor broadcastable to `tensor`: True at the chosen batch items and indices.

    Args:
        tensor: the edited tensor (static sizes are checked against the selection).
        batch: list of batch positions, or None for every item.
        axis: axis along which `indices` select (e.g. -1 for the tokens of attention probs).
        indices: list of positions along `axis`, or None for all.

    Raises:
        ValueError: a batch position or index outside the tensor (it would select nothing).
    """
    shape, rank = tf.shape(tensor), tensor.shape.rank
    mask = tf.ones([1] * rank, dtype=tf.bool)
    if batch is not None:
        _check_positions("batch items", batch, tensor.shape[0])
        hits = tf.reduce_any(tf.one_hot(batch, shape[0], on_value=True, off_value=False), 0)
        mask = tf.logical_and(mask, tf.reshape(hits, [-1] + [1] * (rank - 1)))
    if indices is not None:
        if axis is None:
            raise ValueError("indices given without an axis: pass axis=-1 (channels, tokens) "
                             "or the axis the indices select along")
        axis = axis % rank
        _check_positions(f"indices along axis {axis}", indices, tensor.shape[axis])
        hits = tf.reduce_any(
            tf.one_hot(indices, shape[axis], on_value=True, off_value=False), 0
        )
        view = [1] * rank
        view[axis] = -1
        mask = tf.logical_and(mask, tf.reshape(hits, view))
    return mask


def _selected(value, tensor, neutral, batch, axis, indices):
    """`value` broadcast to `tensor` at the selected places and `neutral` elsewhere."""
    full = tf.cast(tf.broadcast_to(value, tf.shape(tensor)), tensor.dtype)
    if batch is None and indices is None:
        return full
    return tf.where(_selection_mask(tensor, batch, axis, indices), full, neutral)


def replace_with(value, batch=None, axis=None, indices=None):
    """Edit that puts `value` (broadcastable to the site's tensor) at the selected places.

    Args:
        value: tensor or array, e.g. recorded attention probabilities from another prompt.
        batch: list of batch items to edit (default all).
        axis, indices: optional selection along one more axis (tokens, channels, heads).
    """

    def edit(tensor, where=None):
        return _selected(value, tensor, tensor, batch, axis, indices)

    return edit


def add(delta, batch=None, axis=None, indices=None):
    """Edit that adds `delta` (broadcastable) at the selected places (steering, noise)."""

    def edit(tensor, where=None):
        return tensor + _selected(delta, tensor, tf.zeros_like(tensor), batch, axis, indices)

    return edit


def scale(factor, batch=None, axis=None, indices=None):
    """Edit that multiplies the selected places by `factor` (0 ablates them)."""

    def edit(tensor, where=None):
        return tensor * _selected(factor, tensor, tf.ones_like(tensor), batch, axis, indices)

    return edit
