"""Prompt-to-prompt (Hertz et al., google/prompt-to-prompt) on the lens: cross-attention
control of a source prompt and any number of edited prompts in one batched generation.

    from keras_sd_interp.editing import prompt_to_prompt as p2p
    editor = p2p.PromptToPrompt(pipe, "a trouser and a boot", ["a trouser and a bag"],
                                p2p.Replace(cross_replace_steps=0.8, self_replace_steps=0.4),
                                local_blend=p2p.LocalBlend([["boot"], ["bag"]]), num_steps=25)
    result = editor.generate(seed=0, guidance=5.0)     # result.source, result.edits
    result = editor.generate(seed=0, guidance=5.0, daam_options=True)
    result.daam.compute_heat_maps(image=1).word("bag")  # DAAM maps of the same (edited) run

    inverted = p2p.invert(pipe, real_images, "a trouser and a boot", num_steps=25,
                          guidance=5.0, method="null_text")           # or method="ddim"
    result = editor.generate(**inverted.generate_args())              # edits of a real image

Rooms: `words` (word -> token positions), `seq_aligner` (replace and refine maps), `steps`
(cross_replace_steps / self_replace_steps tables), `controllers` (Replace, Refine, Reweight),
`local_blend`, `run` (PromptToPrompt, check_request), `inversion` (DDIM and null-text
inversion of real images).
"""

from keras_sd_interp.editing.prompt_to_prompt.controllers import (Controller, Refine, Replace,
                                                                  Reweight)
from keras_sd_interp.editing.prompt_to_prompt.inversion import (Inversion, check_images,
                                                                ddim_inversion, invert,
                                                                null_text_inversion, psnr)
from keras_sd_interp.editing.prompt_to_prompt.local_blend import LocalBlend
from keras_sd_interp.editing.prompt_to_prompt.run import EditResult, PromptToPrompt, check_request

__all__ = ["Controller", "EditResult", "Inversion", "LocalBlend", "PromptToPrompt", "Refine",
           "Replace", "Reweight", "check_images", "check_request", "ddim_inversion", "invert",
           "null_text_inversion", "psnr"]
