"""Causal tracing of U-Net and text-encoder components (Basu et al., ICLR 2024; ROME's method).

Three kinds of run share the initial latent of one seed:
- clean: the prompt as it is; every component's output is recorded at every step;
- corrupted: Gaussian noise (std = `noise_scale` x the embeddings' std) added at `text.embed` on
  the subject's tokens, conditional half only;
- restored: the corrupted run with ONE component's clean output put back (at every step, or the
  chosen steps). K restorations run as ONE generation of K copies (same latent, same corrupted
  context), copy k patched at component k only (`lens.patch(clean, batch=[k])`).

Indirect effect of a component = score(restored) - score(corrupted), where the score is the judge's
probability of the subject's class in the subject's cell, averaged over prompts and seeds.

    from keras_sd_interp.attribution import causal_trace as ct
    result = ct.causal_trace(pipe, judge, [("a sneaker and a bag", "sneaker")], seeds=[0, 1])
    result["effect"]        # (components,) in network order, result["components"] their names

Components are strings: U-Net sites (`res_block_3`, `spatial_transformer_2.attn2`, ...) or
text-encoder sites at one token (`text.layer_0.attn.out@2`, `text.layer_1.mlp.out@2`).
"""

import numpy as np
from tqdm import tqdm

from keras_sd_interp import lens

UNET_KINDS = ("res", "attn1", "attn2", "ff")
TEXT_KINDS = ("attn.out", "mlp.out")


# -- components and their names -------------------------------------------------------------
def unet_components(pipe, kinds=UNET_KINDS):
    """U-Net component sites in network order (ResBlocks, then each transformer's attn1, attn2,
    ff where they occur): tiny and sd14 both have 22 ResBlocks and 16 transformers -> 70."""
    from keras_sd_interp.lens import taps

    bad = sorted(set(kinds) - set(UNET_KINDS))
    if bad:
        raise ValueError(f"unknown U-Net component kinds {bad}; valid: {UNET_KINDS}")
    chosen = []
    for name in taps.tap_shapes(pipe.diffusion_model):
        parts = name.split(".")
        if parts[0].startswith("res_block_") and len(parts) == 1 and "res" in kinds:
            chosen.append(name)
        elif parts[0].startswith("spatial_transformer_") and len(parts) == 2 \
                and parts[1] in kinds:
            chosen.append(name)
    return chosen


def _index(name, prefix):
    return int(name.split(".")[0][len(prefix):])


def unet_block(component):
    """"down", "mid" or "up": where a U-Net component sits (transformers 0-5 / 6 / 7-15,
    ResBlocks 0-7 / 8-9 / 10-21)."""
    if component.startswith("res_block_"):
        i = _index(component, "res_block_")
        return "down" if i < 8 else "mid" if i < 10 else "up"
    i = _index(component, "spatial_transformer_")
    return "down" if i < 6 else "mid" if i == 6 else "up"


def diffusers_name(component):
    """SD's diffusers module name of a U-Net component (sd14 topology), e.g.
    "spatial_transformer_7.attn2" -> "up_blocks.1.attentions.0.transformer_blocks.0.attn2",
    "res_block_8" -> "mid_block.resnets.0"."""
    if component.startswith("res_block_"):
        i = _index(component, "res_block_")
        if i < 8:
            return f"down_blocks.{i // 2}.resnets.{i % 2}"
        if i < 10:
            return f"mid_block.resnets.{i - 8}"
        return f"up_blocks.{(i - 10) // 3}.resnets.{(i - 10) % 3}"
    i = _index(component, "spatial_transformer_")
    kind = component.split(".")[1]
    if i < 6:
        block = f"down_blocks.{i // 2}.attentions.{i % 2}"
    elif i == 6:
        block = "mid_block.attentions.0"
    else:
        block = f"up_blocks.{(i - 7) // 3 + 1}.attentions.{(i - 7) % 3}"
    return f"{block}.transformer_blocks.0.{kind}"


def component_table(components):
    """Rows {"component", "block", "diffusers"} for U-Net components (docs, figures)."""
    return [{"component": c, "block": unet_block(c), "diffusers": diffusers_name(c)}
            for c in components]


def text_components(pipe, tokens, kinds=TEXT_KINDS):
    """Text-encoder components `text.layer_{i}.{kind}@{token}` for every layer, kind, token."""
    bad = sorted(set(kinds) - set(TEXT_KINDS))
    if bad:
        raise ValueError(f"unknown text component kinds {bad}; valid: {TEXT_KINDS}")
    layers = pipe.text_encoder.num_text_layers
    return [f"text.layer_{i}.{kind}@{t}" for i in range(layers) for kind in kinds
            for t in tokens]


def split_component(component):
    """"text.layer_0.attn.out@2" -> ("text.layer_0.attn.out", 2); U-Net names -> (name, None)."""
    site, _, token = component.partition("@")
    return site, (int(token) if token else None)


# -- prompts, subjects, scores --------------------------------------------------------------
def subject_spec(pipe, prompt, subject):
    """Where the subject is: {"tokens": its token positions, "class": class index,
    "cell": "left" | "right" | "middle"} for tiny's prompts "a X" and "a X and a Y".

    Raises ValueError for a word that is not a class name or not in the prompt."""
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    if subject not in CLASS_NAMES:
        raise ValueError(f"unknown subject {subject!r}; valid: {list(CLASS_NAMES)}")
    words = prompt.split()
    if subject not in words:
        raise ValueError(f"subject {subject!r} is not a word of prompt {prompt!r}")
    position = words.index(subject)
    cell = "middle" if "and" not in words else ("left" if position < words.index("and")
                                                else "right")
    return {"tokens": [position + 1], "class": CLASS_NAMES.index(subject), "cell": cell}


def judge_scorer(judge):
    """A scorer (images uint8 (n, 32, 64, 1), spec) -> probabilities (n,) of spec's class in
    spec's cell, by the Fashion-MNIST judge. SD users pass their own (e.g. CLIP)."""
    from keras_sd_interp.data import compositions
    from keras_sd_interp.judge import predict_classes

    def score(images, spec):
        if spec["cell"] == "middle":
            cells = compositions.middle(images)
        else:
            cells = compositions.halves(images)[spec["cell"] == "right"]
        return predict_classes(judge, cells)[1][:, spec["class"]]

    return score


def embedding_std(pipe, prompts):
    """Std of the text embeddings (`text.embed`) of `prompts` over every token and channel."""
    with lens.trace(pipe, record="text.embed") as tr:
        pipe.sampler.generate(prompts, num_steps=1)
    return float(np.std(tr["text.embed"]))


class Corruption:
    """The corrupted run's edit at `text.embed`: adds `delta` (1, L, D) at `tokens`.

    One object for a whole trace: the text encoder runs eagerly, so setting `delta` and
    `tokens` between generations changes the noise without recompiling the U-Net step."""

    def __init__(self):
        self.delta, self.tokens = None, None

    def set(self, shape, tokens, std, seed):
        """Fresh noise N(0, std^2) of `shape` (1, L, D) on `tokens`, drawn from `seed`."""
        rng = np.random.default_rng(seed)
        self.delta = (rng.standard_normal(shape) * std).astype(np.float32)
        self.tokens = list(tokens)

    def __call__(self, tensor):
        return lens.sites.add(self.delta, axis=1, indices=self.tokens)(tensor)


# -- the runs -------------------------------------------------------------------------------
def clean_run(pipe, prompt, noise, components, num_steps, guidance):
    """The clean trace (records every component site, every step) and its images uint8."""
    record = sorted({split_component(c)[0] for c in components})
    with lens.trace(pipe, record=record, half="cond") as clean:
        gen = pipe.sampler.generate(prompt, num_steps=num_steps, diffusion_noise=noise,
                                    unconditional_guidance_scale=guidance)
    return clean, gen.uint8()


def restored_images(pipe, prompt, noise, clean, corruption, restore, num_steps, guidance,
                    steps=None):
    """ONE generation of len(restore) copies of the corrupted run; copy k gets the clean output
    of every component in restore[k] (a list, maybe empty) at `steps` (None: all).

    Args:
        noise: initial latent (1, h, w, 4), repeated for every copy.
        clean: the clean trace; corruption: a `Corruption` (or None: no corruption).
        restore: list of lists of component names.

    Returns uint8 images (len(restore), H, W, 1).
    """
    edits = {}
    if corruption is not None:
        edits["text.embed"] = corruption
    for k, components in enumerate(restore):
        for component in components:
            site, token = split_component(component)
            edit = (lens.patch(clean, batch=[k]) if token is None
                    else lens.patch(clean, batch=[k], axis=1, indices=[token]))
            edits.setdefault(site, []).append(edit)
    copies = len(restore)
    with lens.trace(pipe, edits=edits, half="cond", steps=steps):
        gen = pipe.sampler.generate([prompt] * copies, num_steps=num_steps,
                                    diffusion_noise=np.repeat(noise, copies, axis=0),
                                    unconditional_guidance_scale=guidance)
    return gen.uint8()


def causal_trace(pipe, scorer, cases, components, seeds=(0,), noise_scale=3.0, num_steps=25,
                 guidance=5.0, steps=None, chunk_size=36, progress=True):
    """Indirect effect of every component, averaged over cases and seeds.

    Args:
        pipe: pipeline; scorer: `judge_scorer(judge)` or any (images, spec) -> (n,) function
            (a keras judge model is wrapped with `judge_scorer`).
        cases: list of (prompt, subject word).
        components: U-Net and/or text component names (`unet_components`, `text_components`).
        seeds: initial-latent seeds; each (case, seed) is one clean / corrupted / restored set.
        noise_scale: corruption std as a multiple of the embeddings' std (ROME uses 3).
        steps: steps at which components are restored (None: every step).
        chunk_size: restorations per batched generation (bounds memory: K copies of the run).

    Returns dict: components, effect (C,) mean indirect effect, clean / corrupted (cases, seeds)
    scores, restored (cases, seeds, C), embedding_std, and the settings.
    """
    import keras

    if isinstance(scorer, keras.Model):
        scorer = judge_scorer(scorer)
    if noise_scale <= 0:
        raise ValueError(f"noise_scale={noise_scale}: use a positive multiple of the std")
    if not cases:
        raise ValueError("cases is empty: give (prompt, subject) pairs")
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}: use an integer >= 1")
    components = list(components)
    specs = [subject_spec(pipe, prompt, subject) for prompt, subject in cases]
    std = embedding_std(pipe, [prompt for prompt, _ in cases])
    corruption = Corruption()
    shape = (1,) + tuple(pipe.text_encoder.output.shape[1:])
    clean_scores = np.zeros((len(cases), len(seeds)))
    corrupted_scores = np.zeros_like(clean_scores)
    restored = np.zeros((len(cases), len(seeds), len(components)))
    chunks = [components[i:i + chunk_size] for i in range(0, len(components), chunk_size)]
    bar = tqdm(total=len(cases) * len(seeds) * len(chunks), desc="causal trace",
               disable=not progress)
    for c, ((prompt, _), spec) in enumerate(zip(cases, specs)):
        for s, seed in enumerate(seeds):
            noise = pipe.sampler.initial_noise(1, seed).numpy()
            clean, clean_image = clean_run(pipe, prompt, noise, components, num_steps, guidance)
            corruption.set(shape, spec["tokens"], noise_scale * std, seed=10_000 + seed)
            corrupted_image = restored_images(pipe, prompt, noise, clean, corruption, [[]],
                                              num_steps, guidance)
            clean_scores[c, s] = scorer(clean_image, spec)[0]
            corrupted_scores[c, s] = scorer(corrupted_image, spec)[0]
            start = 0
            for chunk in chunks:
                images = restored_images(pipe, prompt, noise, clean, corruption,
                                         [[name] for name in chunk], num_steps, guidance, steps)
                restored[c, s, start:start + len(chunk)] = scorer(images, spec)
                start += len(chunk)
                bar.update()
    bar.close()
    effects = restored - corrupted_scores[..., None]
    return {
        "components": components,
        "effect": effects.mean(axis=(0, 1)),
        "effects": effects,
        "clean": clean_scores,
        "corrupted": corrupted_scores,
        "restored": restored,
        "embedding_std": std,
        "cases": [list(case) for case in cases],
        "seeds": [int(s) for s in seeds],
        "noise_scale": noise_scale,
        "num_steps": num_steps,
        "guidance": guidance,
        "steps": None if steps is None else [int(s) for s in steps],
    }


def text_effect_map(result, num_layers, tokens, kind):
    """The text-encoder part of a result as a (layers, tokens) map for `kind` ("attn.out" or
    "mlp.out"); NaN where a component was not traced."""
    effect = dict(zip(result["components"], result["effect"]))
    return np.array([[effect.get(f"text.layer_{i}.{kind}@{t}", np.nan) for t in tokens]
                     for i in range(num_layers)])


def rank_stability(effects_a, effects_b):
    """Spearman rank correlation (and p-value) between two effect vectors over the same
    components (e.g. from two disjoint seed sets)."""
    from scipy.stats import spearmanr

    rho, p = spearmanr(np.asarray(effects_a), np.asarray(effects_b))
    return float(rho), float(p)
