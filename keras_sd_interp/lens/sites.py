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
import threading

import tensorflow as tf

_STATE = threading.local()


def _active_contexts():
    if not hasattr(_STATE, "stack"):
        _STATE.stack = []
    return _STATE.stack


class HookContext:
    """The edits and the records of one `hooks(...)` block.

    Attributes:
        record: set of site names whose tensors are kept in `cache` ("all": every site).
        edits: dict site name -> list of functions tensor -> tensor, applied in order.
        cache: dict site name -> the tensor that flowed through that site (after edits).
    """

    def __init__(self, record=(), edits=None):
        self.record_all = record == "all"
        self.record = set() if self.record_all else set(record)
        self.edits = {}
        for name, fns in (edits or {}).items():
            self.edits[name] = list(fns) if isinstance(fns, (list, tuple)) else [fns]
        self.cache = {}
        self.seen = set()

    def apply(self, name, tensor):
        self.seen.add(name)
        for fn in self.edits.get(name, ()):
            tensor = fn(tensor)
        if self.record_all or name in self.record:
            self.cache[name] = tensor
        return tensor


def site(name, tensor):
    """Passes `tensor` through the active hooks registered for `name`; identity otherwise."""
    stack = _active_contexts()
    if not stack or name is None:
        return tensor
    for context in stack:
        tensor = context.apply(name, tensor)
    return tensor


@contextlib.contextmanager
def active(context):
    """Puts a hook context (any object with `apply(name, tensor) -> tensor`) on the stack."""
    stack = _active_contexts()
    stack.append(context)
    try:
        yield context
    finally:
        stack.remove(context)


@contextlib.contextmanager
def located(**where):
    """Tells hook contexts where the model runs: e.g. `step`, `timestep` (scalar tensors) and
    `half` ("cond"/"uncond") or `halves` (the batch is [uncond; cond], each `half_size` items).
    The sampler sets it; `location()` reads it (None outside any `located` block)."""
    previous = getattr(_STATE, "where", None)
    _STATE.where = dict(previous or {}, **where)
    try:
        yield
    finally:
        _STATE.where = previous


def location():
    """The innermost `located(...)` information (a dict), or None."""
    return getattr(_STATE, "where", None)


@contextlib.contextmanager
def hooks(record=(), edits=None):
    """Activates recording and editing of named sites for the block; yields the cache dict.

    Args:
        record: site names to record, or "all" for every site reached.
        edits: dict site name -> function (or list of functions) tensor -> tensor.

    Yields:
        dict site name -> recorded tensor, filled while the block runs the model.
    """
    context = HookContext(record, edits)
    with active(context):
        yield context.cache
    missing = (context.record | set(context.edits)) - context.seen
    if missing and context.seen:
        raise ValueError(
            f"these sites were never reached by the forward pass: {sorted(missing)}; "
            "see keras_sd_interp.lens.taps.list_taps() for valid names"
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
