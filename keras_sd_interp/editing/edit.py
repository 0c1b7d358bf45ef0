"""An `Edit`: new kernels for named Dense layers, applied reversibly, saved as a small .npz.

Layer names as `lens.weights` takes them: "text.layer_{i}.attn.out_proj" (the text encoder's
self-attention output projection) and "spatial_transformer_{i}.attn2.to_k" / ".to_v"
(cross-attention key / value).
"""

import dataclasses
import json
import os
import zipfile

import numpy as np

from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.lens.weights import dense_kernel, set_dense_kernel


def _applied(pipe):
    """The edits applied to `pipe`, oldest first (kept in the pipeline's model cache)."""
    return model_cache(pipe).get_or_build("editing.applied", list)


@dataclasses.dataclass
class Edit:
    """New kernels {layer name: (in, out) array} and what made them (a JSON-ready dict).

    `apply(pipe)` writes the kernels and keeps the old ones; `undo(pipe)` puts them back
    bit for bit. An applied edit belongs to its pipeline, and edits on one pipeline unwind last
    in, first out (undoing an earlier one first would put back kernels a later one replaced).
    `save(path)` / `load_edit(path)` use one .npz (kernels + JSON info)."""

    kernels: dict
    info: dict = dataclasses.field(default_factory=dict)
    _saved: dict = dataclasses.field(default=None, repr=False)
    _pipe: object = dataclasses.field(default=None, repr=False)

    def apply(self, pipe):
        if self._saved is not None:
            raise RuntimeError("this edit is already applied; undo() it first")
        saved = {name: dense_kernel(pipe, name)[0] for name in self.kernels}
        for name, kernel in self.kernels.items():
            if saved[name].shape != kernel.shape:
                raise ValueError(f"edit kernel {name} is {kernel.shape}; the model's is "
                                 f"{saved[name].shape} (another model size?)")
        for name, kernel in self.kernels.items():
            set_dense_kernel(pipe, name, kernel)
        self._saved, self._pipe = saved, pipe
        _applied(pipe).append(self)
        return self

    def undo(self, pipe):
        if self._saved is None:
            raise RuntimeError("this edit is not applied")
        if pipe is not self._pipe:
            raise ValueError("this edit was applied to another pipeline: undo it there "
                             "(its saved kernels are that pipeline's)")
        stack = _applied(pipe)
        if stack[-1] is not self:
            raise RuntimeError(f"{len(stack) - 1 - stack.index(self)} edit(s) applied after this "
                               "one are still applied: undo them first (last in, first out)")
        for name, kernel in self._saved.items():
            set_dense_kernel(pipe, name, kernel)
        stack.pop()
        self._saved, self._pipe = None, None
        return self

    def save(self, path):
        """Writes the kernels and info as one .npz to exactly `path` (a name or an open binary
        file; numpy's own `savez` would add ".npz" to a name without it, and `load_edit(path)`
        would then miss it). A named file is written to a temporary name and moved into place,
        so an interrupted save never leaves half a file."""
        arrays = {f"kernel:{name}": kernel for name, kernel in self.kernels.items()}
        if hasattr(path, "write"):
            np.savez(path, info=np.array(json.dumps(self.info)), **arrays)
            return path
        partial = f"{path}.partial"
        with open(partial, "wb") as file:
            np.savez(file, info=np.array(json.dumps(self.info)), **arrays)
        os.replace(partial, path)
        return path


def load_edit(path):
    """An `Edit` from a file written by `Edit.save`. A missing file, or one that is not such an
    .npz, raises an error naming the path and what was expected."""
    expected = "an .npz written by Edit.save (an 'info' entry and 'kernel:<layer>' arrays)"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"edit file {path!r} does not exist; expected {expected}")
    try:
        with np.load(path, allow_pickle=False) as data:
            kernels = {key[len("kernel:"):]: data[key] for key in data.files
                       if key.startswith("kernel:")}
            info = json.loads(str(data["info"]))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, AttributeError) as error:
        raise ValueError(f"{path!r} is not an edit file ({type(error).__name__}: {error}); "
                         f"expected {expected}") from None
    if not kernels:
        raise ValueError(f"{path!r} holds no kernels; expected {expected}")
    return Edit(kernels, info)
