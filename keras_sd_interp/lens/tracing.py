"""`trace(...)`: record and edit sites across a whole generation, as DAAM's `trace` and
nnsight's `generate()` do, around the user's own call.

    with lens.trace(pipe, record="*.attn2.probs", reduce="sum", half="cond") as tr:
        images = pipe.text_to_image("a sneaker and a bag", num_steps=25, seed=0)
    tr["spatial_transformer_3.attn2.probs"]       # (1, heads, h*w, tokens): summed over steps

    with lens.trace(pipe, record=["res_block_3"]) as clean:      # per step: (steps, n, ...)
        pipe.text_to_image(prompt, seed=0)
    with lens.trace(pipe, edits={"text.embed": lens.sites.add(noise)}, half="cond",
                    ) as corrupted_and_restored:                  # edits from another trace:
        ...
    with lens.trace(pipe, edits={"res_block_3": lens.patch(clean)}):   # restore, every step
        pipe.text_to_image(prompt, seed=0)

What a trace touches:
- sites: the U-Net's, the text encoder's (`text.layer_0.attn.z`, see `models/text_encoder.py`)
  and the sampler's (`sampler.x_t`, `sampler.eps`, `sampler.x0`): `lens.list_sites(pipe)`;
  chosen by exact name, glob (`"*.attn2.probs"`), predicate (name -> bool) or U-Net address
  (`12`, `"layer_12"`, `"conv_9"`), as `lens.sites.hooks` chooses them (`selection.py`);
- steps: every step, or a list / range of step indices (0 = the first, noisiest step);
- half: "cond" (the prompts), "uncond" (the empty or negative prompt) or "both".

Hook functions are called as `fn(tensor)` or `fn(tensor, where)` with `where` a `Where`
(site, step, timestep, half: step and timestep are scalar int32 tensors, None at text sites).
They run when the step is compiled (hooks are read at trace time), so they must use tf ops.

Records: `reduce=None` keeps every recorded step (`tr[site]`: (steps, n, ...)); "sum",
"mean" or "max" stream over steps (`tr[site]`: (n, ...)). Text-encoder sites are recorded once
per generation (no step axis). `tr.memory_bytes()` says what the records hold.
"""

import dataclasses
import inspect
import warnings

import numpy as np
import tensorflow as tf

from keras_sd_interp import hook_points
from keras_sd_interp.lens import sites, taps
from keras_sd_interp.lens.catalog import list_sites
from keras_sd_interp.lens.selection import SiteSelector, examples
from keras_sd_interp.models.sampler import HALVES

REDUCERS = (None, "sum", "mean", "max")
HALF_CHOICES = ("cond", "uncond", "both")
# Records above the budget are refused before the generation runs (raise it with
# `trace(..., max_record_bytes=...)`); above the warning level the trace says how much it holds.
RECORD_BUDGET_BYTES = 2 * 1024 ** 3
RECORD_WARNING_BYTES = 512 * 1024 ** 2


@dataclasses.dataclass(frozen=True)
class Where:
    """Where a hook function runs. step, timestep: scalar int32 tensors (None at text sites);
    half: "cond" / "uncond" (None at sampler sites, which see the guided batch)."""

    site: str
    step: object
    timestep: object
    half: object


@dataclasses.dataclass(frozen=True)
class Patch:
    """Edit marker: put the value `source` (a finished trace) recorded at the same site, step
    and half; optionally only at some batch items / indices along one axis."""

    source: object
    batch: tuple = None
    axis: int = None
    indices: tuple = None


def patch(source, batch=None, axis=None, indices=None):
    """An edit that replaces a site's tensor with what trace `source` recorded there, step by
    step: causal tracing's restore and prompt-to-prompt's injection. `source` must have
    recorded that site with `reduce=None`, at least at the steps this trace edits."""
    return Patch(source, None if batch is None else tuple(batch), axis,
                 None if indices is None else tuple(indices))


def _call_hook(fn, tensor, where):
    try:
        parameters = inspect.signature(fn).parameters.values()
        takes_where = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                          or p.kind == p.VAR_POSITIONAL for p in parameters) >= 2
    except (TypeError, ValueError):
        takes_where = False
    output = fn(tensor, where) if takes_where else fn(tensor)
    return sites.checked_output(fn, where.site, tensor, output)


def _feed_key(name, half):
    return f"{name}|{half}"


class StepHooks:
    """The hook context on the site stack while a trace's step (or text encoding) is traced.

    Applies the trace's edits and collects its records for the halves it covers; at sampler
    sites the whole guided batch is seen. Records and feeds are keyed "site|half".
    """

    def __init__(self, record, edits, half):
        self.record, self.edits, self.half = record, edits, half
        self.records, self.feeds = {}, {}

    def start(self, feeds):
        self.records, self.feeds = {}, dict(feeds)

    def finish(self):
        records, self.records = self.records, {}
        return records

    def _edits_for(self, name):
        return [fn for selector, fns in self.edits for fn in fns if selector(name)]

    def apply(self, name, tensor):
        where = sites.location()
        if where is None:
            return tensor
        edits = self._edits_for(name)
        recorded = self.record(name)
        if not edits and not recorded:
            return tensor
        if name.startswith("sampler."):
            parts = [(None, tensor)]
        elif where.get("halves"):
            size = where["half_size"]
            parts = [(HALVES[0], tensor[:size]), (HALVES[1], tensor[size:])]
        else:
            parts = [(where.get("half"), tensor)]
        edited_parts = []
        for half, part in parts:
            if half is None or self.half in ("both", half):
                located = Where(name, where.get("step"), where.get("timestep"), half)
                for fn in edits:
                    if isinstance(fn, Patch):
                        value = self.feeds.get(_feed_key(name, half))
                        if value is None:
                            raise ValueError(f"lens.patch: the source trace did not record "
                                             f"{name!r} for half {half!r}")
                        fn = sites.replace_with(value, fn.batch, fn.axis, fn.indices)
                    part = _call_hook(fn, part, located)
                if recorded:
                    self.records[_feed_key(name, half)] = part
            edited_parts.append(part)
        if not edits:
            return tensor  # recording only: the tensor flows on untouched
        return edited_parts[0] if len(edited_parts) == 1 else tf.concat(edited_parts, 0)


class Trace:
    """Records and edits sites during the generation calls made inside its `with` block.

    Args:
        pipe: the pipeline whose `text_to_image` (or `sampler.generate`) will run inside.
        record: sites to record: a name, glob, address, predicate, or a list of them.
        edits: dict {site selection: fn, [fns] or lens.patch(source_trace)}.
        steps: step indices to hook (None: all); a list or a range.
        half: "cond", "uncond" or "both".
        reduce: None (keep every step), "sum", "mean" or "max" over steps.
        max_record_bytes: refuse (ValueError, before the generation runs) when the records
            would hold more (`record_estimate`); None: no limit. Above 512 MiB it warns.

    After the block: `tr[site]` / `tr.get(site, half)` (NumPy), `tr.sites()`,
    `tr.steps` (the hooked steps), `tr.timesteps`, `tr.generation` (images, latents, prompts),
    `tr.memory_bytes()`.
    """

    def __init__(self, pipe, record=(), edits=None, steps=None, half="cond", reduce=None,
                 max_record_bytes=RECORD_BUDGET_BYTES):
        if half not in HALF_CHOICES:
            raise ValueError(f"half={half!r}: use one of {HALF_CHOICES}")
        if reduce not in REDUCERS:
            raise ValueError(f"reduce={reduce!r}: use one of {REDUCERS}")
        if edits is not None and not isinstance(edits, dict):
            raise ValueError("edits must be a dict {site selection: function or lens.patch(...)}")
        self.pipe, self.half, self.reduce = pipe, half, reduce
        self.step_selection = steps
        self.max_record_bytes = max_record_bytes
        self._shapes = list_sites(pipe)
        valid = list(self._shapes)
        resolve = self._resolver(pipe.diffusion_model, valid)
        self.record = SiteSelector(record, valid, resolve, "record")
        self.edits, self._edit_labels = [], list(edits or {})
        for selection, fns in (edits or {}).items():
            fns = list(fns) if isinstance(fns, (list, tuple)) else [fns]
            for fn in fns:
                if not (callable(fn) or isinstance(fn, Patch)):
                    raise ValueError(f"edit for {selection!r} is {fn!r}: give a function "
                                     "tensor -> tensor (or (tensor, where)) or lens.patch(trace)")
            self.edits.append((SiteSelector(selection, valid, resolve, "edit"), fns))
        self._text_names = [n for n in valid if n.startswith("text.")]
        self._values, self._counts = {}, {}
        self.steps, self.timesteps, self.generation = [], [], None
        self._done = False

    @staticmethod
    def _resolver(unet, valid):
        def resolve(address):
            if isinstance(address, str) and address.startswith(("text.", "sampler.")):
                raise ValueError(f"unknown site {address!r}; valid names look like "
                                 f"{examples(valid)} (lens.list_sites(pipe))")
            return taps.resolve(unet, address)
        return resolve

    # -- the with block -------------------------------------------------------------------
    def __enter__(self):
        hook_points.open_trace(self)
        return self

    def __exit__(self, *exc_info):
        hook_points.close_trace()
        return False

    # -- called by the sampler (models/sampler.py), through hook_points.active_trace --------
    def _hooks(self):
        return StepHooks(self.record, self.edits, self.half)

    def begin(self, sampler, num_steps, num_images, timesteps):
        if self._done:
            raise RuntimeError("a trace records one generation; open a new trace for another")
        self._done = True
        self.sampler, self.num_images = sampler, num_images
        if self.step_selection is None:
            chosen = list(range(num_steps))
        else:
            chosen = sorted({int(s) for s in self.step_selection})
            bad = [s for s in chosen if not 0 <= s < num_steps]
            if bad:
                raise ValueError(f"steps {bad} out of range: this generation has steps "
                                 f"0..{num_steps - 1} (num_steps={num_steps})")
        self._chosen = set(chosen)
        self.all_timesteps = list(timesteps)
        self._check_record_size(len(chosen), num_images)
        for selector, fns in self.edits:
            for fn in fns:
                if isinstance(fn, Patch):
                    self._check_patch(fn, chosen)

    def record_estimate(self, num_steps, num_images):
        """Bytes the records of a generation of `num_images` images hooked at `num_steps`
        steps will hold (float32; text sites once, U-Net sites per step unless reduced,
        doubled for half="both")."""
        halves = 2 if self.half == "both" else 1
        kept_steps = num_steps if self.reduce is None else 1
        total = 0
        for name, shape in self._shapes.items():
            if not self.record(name):
                continue
            per_image = int(np.prod(shape)) * 4
            if name.startswith("sampler."):
                total += per_image * num_images * kept_steps
            elif name.startswith("text."):
                total += per_image * num_images * halves
            else:
                total += per_image * num_images * halves * kept_steps
        return total

    def _check_record_size(self, num_steps, num_images):
        estimate = self.record_estimate(num_steps, num_images)
        what = (f"recording {sum(map(self.record, self._shapes))} site(s) for {num_images} "
                f"image(s) x {num_steps} step(s) (half={self.half!r}) holds about "
                f"{estimate / 2 ** 20:,.0f} MiB")
        if self.max_record_bytes is not None and estimate > self.max_record_bytes:
            raise ValueError(f"{what}, above the budget of {self.max_record_bytes / 2 ** 20:,.0f} "
                             "MiB: record fewer sites or steps (record=..., steps=...), reduce "
                             "over steps (reduce='mean'), or raise the budget with "
                             "lens.trace(..., max_record_bytes=...)")
        if estimate > RECORD_WARNING_BYTES:
            warnings.warn(what + " (in memory until the trace is dropped)", ResourceWarning,
                          stacklevel=4)

    def _check_patch(self, patch, chosen):
        """Raises ValueError unless `patch.source` recorded what this run will put back: every
        step, the same timesteps at the patched steps, and as many images (or one image put
        into the items that `batch=` names)."""
        source = patch.source
        if not isinstance(source, Trace) or source.generation is None:
            raise ValueError("lens.patch(source): source must be a finished trace")
        if source.reduce is not None:
            raise ValueError("lens.patch(source): source must record every step (reduce=None)")
        missing = sorted(set(chosen) - set(source.steps))
        if missing:
            raise ValueError(f"lens.patch(source): source did not record steps {missing}")
        if source.num_images != self.num_images and \
                not (source.num_images == 1 and patch.batch is not None):
            raise ValueError(
                f"lens.patch(source): the source made {source.num_images} image(s), this run "
                f"makes {self.num_images}; patch a run of the same batch, or put a one-image "
                "source into chosen items with lens.patch(source, batch=[...])")
        theirs = dict(zip(source.steps, source.timesteps))
        for step in chosen:
            if theirs[step] != self.all_timesteps[step]:
                raise ValueError(
                    f"lens.patch(source): step {step} ran at timestep {theirs[step]} in the "
                    f"source ({len(source.all_timesteps)} steps) and at "
                    f"{self.all_timesteps[step]} here ({len(self.all_timesteps)} steps); "
                    "patch runs made with the same num_steps")

    def hooks_step(self, step):
        return step in self._chosen and bool(self.record or self.edits)

    def text_hooks(self):
        touches_text = any(self.record(n) or any(sel(n) for sel, _ in self.edits)
                           for n in self._text_names)
        if not touches_text:
            return None
        return _TextHooks(self)

    def _feeds(self, step):
        feeds = {}
        for selector, fns in self.edits:
            for fn in fns:
                if isinstance(fn, Patch):
                    index = fn.source.steps.index(step)
                    for key, values in fn.source._values.items():
                        name = key.split("|")[0]
                        if selector(name) and not name.startswith("text."):
                            feeds[key] = values[index]
        return feeds

    def run_step(self, step, args):
        edit_keys = tuple(
            (selector.key(), tuple(("patch", f.batch, f.axis, f.indices)
                                   if isinstance(f, Patch) else id(f) for f in fns))
            for selector, fns in self.edits
        )
        key = ("trace", self.record.key(), self.half, edit_keys)
        step_fn = self.sampler.hooked_step(key, self._hooks())
        latent, records = step_fn(tf.constant(step, tf.int32), self._feeds(step), *args)
        self._collect(records)
        self.steps.append(step)
        self.timesteps.append(self.all_timesteps[step])
        return latent

    def _collect(self, records, text=False):
        for key, value in records.items():
            if text or self.reduce is None:
                self._values.setdefault(key, []).append(value)
            elif key not in self._values:
                self._values[key] = value
            elif self.reduce == "max":
                self._values[key] = tf.maximum(self._values[key], value)
            else:
                self._values[key] = self._values[key] + value
            self._counts[key] = self._counts.get(key, 0) + 1

    def end(self, generation):
        self.generation = generation
        if self.edits and not np.isfinite(generation.images).all():
            edited = ", ".join(map(str, self._edit_labels))
            warnings.warn(f"the images made under this trace's edits ({edited}) hold NaN or "
                          "inf (black where they are cast to uint8): an edit put non-finite "
                          "values into the model", RuntimeWarning, stacklevel=3)

    # -- results --------------------------------------------------------------------------
    def sites(self):
        """Recorded (site, half) pairs, as "site|half" strings."""
        return sorted(self._values)

    def get(self, site, half=None):
        """The record of `site` for `half` (default: the trace's half; required for "both").

        Returns NumPy: (steps, n, ...) when reduce is None, else (n, ...); text sites (n, ...).
        """
        if half is None:
            if self.half == "both" and not site.startswith("sampler."):
                raise ValueError(f"this trace covers both halves: say half='cond' or 'uncond' "
                                 f"for {site!r}")
            half = None if site.startswith("sampler.") else self.half
        key = _feed_key(site, half)
        if key not in self._values:
            recorded = sorted({k.split("|")[0] for k in self._values})
            raise KeyError(f"{site!r} (half {half!r}) was not recorded; recorded: {recorded}")
        value = self._values[key]
        if isinstance(value, list):
            if site.startswith("text."):
                return value[0].numpy()
            return np.stack([v.numpy() for v in value])
        if self.reduce == "mean":
            return value.numpy() / self._counts[key]
        return value.numpy()

    def __getitem__(self, site):
        return self.get(site)

    def memory_bytes(self):
        """Bytes held by the records (all steps of kept records, one tensor per reduced one)."""
        total = 0
        for value in self._values.values():
            for tensor in value if isinstance(value, list) else [value]:
                total += tensor.shape.num_elements() * tensor.dtype.size
        return total


class _TextHooks(StepHooks):
    """Text-encoder hooks: run eagerly, records go straight to the trace."""

    def __init__(self, tracer):
        super().__init__(tracer.record, tracer.edits, tracer.half)
        self.tracer = tracer

    def apply(self, name, tensor):
        if not name.startswith("text."):
            return tensor
        for selector, fns in self.edits:
            for fn in fns:
                if isinstance(fn, Patch) and selector(name):
                    where = sites.location() or {}
                    key = _feed_key(name, where.get("half"))
                    values = fn.source._values.get(key)
                    if values is not None:
                        self.feeds[key] = values[0]
        output = super().apply(name, tensor)
        self.tracer._collect(self.finish(), text=True)
        return output


def trace(pipe, record=(), edits=None, steps=None, half="cond", reduce=None,
          max_record_bytes=RECORD_BUDGET_BYTES):
    """Opens a `Trace` around the generation calls of `pipe` (use as a `with` block)."""
    return Trace(pipe, record, edits, steps, half, reduce, max_record_bytes)
