"""An `Edit`: new kernels for named Dense layers, applied reversibly, saved as a small .npz.

Layer names: "text.layer_{i}.attn.out_proj" (the text encoder's self-attention output
projection) and "spatial_transformer_{i}.attn2.to_k" / ".to_v" (cross-attention key / value).
"""

import dataclasses
import json

import numpy as np

_TEXT_PREFIX = "text.layer_"


def dense_layer(pipe, name):
    """The Dense layer called `name` in `pipe` (see the module docstring for the names)."""
    site, _, attribute = name.rpartition(".")
    if site.startswith(_TEXT_PREFIX) and site.endswith(".attn") and attribute == "out_proj":
        for layer in pipe.text_encoder.layers:
            if getattr(layer, "site_name", None) == site[:-len(".attn")]:
                return layer.clip_attn.out_proj
    elif site.endswith(".attn2") and attribute in ("to_k", "to_v"):
        for layer in pipe.diffusion_model.layers:
            if getattr(layer, "site_name", None) == site[:-len(".attn2")]:
                return getattr(layer.transformer_block.attn2, attribute)
    raise ValueError(f"unknown editable layer {name!r}: use 'text.layer_<i>.attn.out_proj' or "
                     "'spatial_transformer_<i>.attn2.to_k' / '.to_v'")


@dataclasses.dataclass
class Edit:
    """New kernels {layer name: (in, out) array} and what made them (a JSON-ready dict).

    `apply(pipe)` writes the kernels and keeps the old ones; `undo(pipe)` puts them back
    bit for bit. `save(path)` / `load_edit(path)` use one .npz (kernels + JSON info)."""

    kernels: dict
    info: dict = dataclasses.field(default_factory=dict)
    _saved: dict = dataclasses.field(default=None, repr=False)

    def apply(self, pipe):
        if self._saved is not None:
            raise RuntimeError("this edit is already applied; undo() it first")
        saved = {}
        for name, kernel in self.kernels.items():
            variable = dense_layer(pipe, name).kernel
            if tuple(variable.shape) != kernel.shape:
                raise ValueError(f"edit kernel {name} is {kernel.shape}; the model's is "
                                 f"{tuple(variable.shape)} (another model size?)")
            saved[name] = np.array(variable.numpy(), copy=True)
        for name, kernel in self.kernels.items():
            dense_layer(pipe, name).kernel.assign(kernel)
        self._saved = saved
        return self

    def undo(self, pipe):
        if self._saved is None:
            raise RuntimeError("this edit is not applied")
        for name, kernel in self._saved.items():
            dense_layer(pipe, name).kernel.assign(kernel)
        self._saved = None
        return self

    def save(self, path):
        """Writes the kernels and info to `path` (.npz), atomically is the caller's choice."""
        arrays = {f"kernel:{name}": kernel for name, kernel in self.kernels.items()}
        np.savez(path, info=np.array(json.dumps(self.info)), **arrays)


def load_edit(path):
    """An `Edit` from a file written by `Edit.save`."""
    with np.load(path) as data:
        kernels = {key[len("kernel:"):]: data[key] for key in data.files
                   if key.startswith("kernel:")}
        info = json.loads(str(data["info"]))
    return Edit(kernels, info)
