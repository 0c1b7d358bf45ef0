"""Closed-form model editing: DiffQuickFix (text encoder), LocoGen / LocoEdit (cross-attention),
and several concepts at once with a keep set (UCE's closed form). Edits are reversible and small.
Prompt-to-prompt (cross-attention control of a batch of edited prompts) is `prompt_to_prompt`."""

from keras_sd_interp.editing.closed_form import objective_gradient, ridge_update
from keras_sd_interp.editing.edit import Edit, load_edit
from keras_sd_interp.editing import prompt_to_prompt
from keras_sd_interp.editing.methods import (
    TEMPLATES,
    concept_prompts,
    diffquickfix,
    locoedit,
    locogen,
)

__all__ = [
    "Edit",
    "TEMPLATES",
    "concept_prompts",
    "diffquickfix",
    "load_edit",
    "locoedit",
    "locogen",
    "objective_gradient",
    "prompt_to_prompt",
    "ridge_update",
]
