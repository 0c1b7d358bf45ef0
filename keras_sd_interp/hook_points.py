"""The ground floor: the named identity point every rebuilt layer reports through, and the slot
that says which trace is open (TransformerLens's `hook_points.py`).

    x = site("res_block_3.conv1", x)       # inside a rebuilt layer's `call`

With nothing active, `site` returns its tensor untouched, so a plain forward costs nothing.
The lens (`keras_sd_interp.lens`) puts hook contexts on the stack (`active`), tells them where
the model runs (`located`: step, timestep, guidance half) and opens traces around a whole
generation (`open_trace`); the models and the sampler only call `site`, `located` and
`active_trace`, so they never import the lens.

Hooks are plain Python state read while a layer's `call` runs: eagerly, or when a
`tf.function` is traced (a compiled function must be traced inside the hook context).
"""

import contextlib
import threading

_STATE = threading.local()


def _stack():
    if not hasattr(_STATE, "stack"):
        _STATE.stack = []
    return _STATE.stack


def site(name, tensor):
    """Passes `tensor` through every active hook context's `apply(name, tensor)`; identity when
    none is active (or the layer has no name yet)."""
    stack = _stack()
    if not stack or name is None:
        return tensor
    for context in stack:
        tensor = context.apply(name, tensor)
    return tensor


@contextlib.contextmanager
def active(context):
    """Puts a hook context (any object with `apply(name, tensor) -> tensor`) on the stack."""
    stack = _stack()
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


def open_trace(tracer):
    """Marks `tracer` (an object with a `pipe` attribute) as the trace open in this thread."""
    if getattr(_STATE, "trace", None) is not None:
        raise RuntimeError("a trace is already open in this thread; close it first")
    _STATE.trace = tracer


def close_trace():
    _STATE.trace = None


def active_trace(pipe):
    """The trace open around `pipe` in this thread, or None. The sampler asks at every
    generation; the trace's protocol (`begin`, `text_hooks`, `hooks_step`, `run_step`, `end`)
    is described in `lens/tracing.py`."""
    tracer = getattr(_STATE, "trace", None)
    return tracer if tracer is not None and tracer.pipe is pipe else None
