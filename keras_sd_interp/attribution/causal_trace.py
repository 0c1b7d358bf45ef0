"""Causal tracing of U-Net and text-encoder components (Basu et al., ICLR 2024; ROME's method).

Three kinds of run share the initial latent of one seed:
- clean: the prompt as it is; every component's output is recorded at every step;
- corrupted: Gaussian noise (std = `noise_scale` x the embeddings' std) added at `text.embed` on
  the subject's tokens, conditional half only;
- restored: the corrupted run with ONE component's clean output put back (at every step, or the
  chosen steps). K restorations run as ONE generation of K copies (same latent, same corrupted
  context), copy k patched at component k only (`lens.patch(clean, batch=[k])`).

Indirect effect of a component = score(restored) - score(corrupted), where the score is a
scorer's `score(images, texts)` of each image against its prompt (`scoring`: CLIP-Score as Basu et
al., or the judge on tiny), averaged over prompts and seeds. Several scorers score the same images
(a dict of them): the result holds each one's effects.

    from keras_sd_interp.attribution import causal_trace as ct
    scorer = scoring.sd14_clip_scorer(pipe.tokenizer)             # or JudgeScorer(judge) on tiny
    result = ct.causal_trace(pipe, scorer, [("a photo of a bottle in a room", "bottle")],
                             unet_components(pipe), seeds=[0, 1])
    result["effect"]        # (components,) in network order, result["components"] their names

The subject is any word or phrase of the prompt, located by the pipeline's own tokenizer
(`lens.tokens.concept_span`); every sub-token of every occurrence is corrupted. Components are
strings (`lens.components`): U-Net sites (`res_block_3`, `spatial_transformer_2.attn2`, ...) or
text-encoder sites at one token (`text.layer_0.attn.out@2`, `text.layer_1.mlp.out@2`).
"""

import numpy as np
from tqdm import tqdm

from keras_sd_interp import lens
from keras_sd_interp.lens.components import split_component
from keras_sd_interp.lens.names import text_layer_site
from keras_sd_interp.lens.tokens import Tokens
from keras_sd_interp.scoring.judge import JudgeScorer

# -- the corrupted and restored runs --------------------------------------------------------
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


def text_tokens(pipe, prompts, which="prompt"):
    """Token positions whose text components are traced: "all" (the padded row) or "prompt"
    (the start token through the first end token of the longest prompt)."""
    tokens = Tokens(pipe)
    if which == "all":
        return list(range(tokens.length))
    if which != "prompt":
        raise ValueError(f"which={which!r}: use 'prompt' or 'all'")
    return list(range(min(tokens.length, max(tokens.prompt_length(p) for p in prompts))))


def select_components(components, patterns):
    """The components matching any of `patterns` (names or globs: "*.attn2", "text.*@5"), in
    network order; all of them for no pattern. ValueError naming a pattern that matches none."""
    import fnmatch

    if not patterns:
        return list(components)
    for pattern in patterns:
        if not fnmatch.filter(components, pattern):
            raise ValueError(f"component {pattern!r} matches none of the {len(components)} "
                             f"components, e.g. {components[:3]} ... {components[-2:]}")
    return [c for c in components if any(fnmatch.fnmatchcase(c, p) for p in patterns)]


def as_scorers(scorer):
    """A scorer, a keras judge model (-> JudgeScorer) or a dict of them -> {name: scorer}."""
    import keras

    scorers = scorer if isinstance(scorer, dict) else {"score": scorer}
    if not scorers:
        raise ValueError("no scorer: give a score(images, texts) function or a dict of them")
    return {name: JudgeScorer(s) if isinstance(s, keras.Model) else s
            for name, s in scorers.items()}


def subject_tokens(pipe, cases, same_positions=False):
    """Token positions of each case's subject span (lens.tokens: every sub-token of every
    occurrence), from the tokenizer alone (no model is built). ValueError for a subject not in
    its prompt, and, with `same_positions` (text components traced: the text map averages the
    cases token by token), for spans at different positions."""
    tokens = Tokens(pipe)
    positions = [tokens.span(prompt, subject).positions for prompt, subject in cases]
    if same_positions and len({tuple(p) for p in positions}) > 1:
        where = ", ".join(f"{s!r} at tokens {p} of {c!r}" for (c, s), p in zip(cases, positions))
        raise ValueError(f"the subjects stand at different token positions ({where}): keep the "
                         "subject at the same position in every case when tracing text components")
    return positions


def causal_trace(pipe, scorer, cases, components, seeds=(0,), noise_scale=3.0, num_steps=25,
                 guidance=5.0, steps=None, chunk_size=36, progress=True):
    """Indirect effect of every component, averaged over cases and seeds.

    Args:
        pipe: pipeline (tiny or sd14).
        scorer: a `score(images, texts) -> (n,)` scorer (`scoring`), a keras judge model, or a
            dict {name: scorer}: every scorer scores the same images against the case's prompt.
        cases: list of (prompt, subject phrase); the subject's tokens are corrupted.
        components: U-Net and/or text component names (`unet_components`, `text_components`).
        seeds: initial-latent seeds; each (case, seed) is one clean / corrupted / restored set.
        noise_scale: corruption std as a multiple of the embeddings' std (ROME uses 3).
        steps: steps at which components are restored (None: every step).
        chunk_size: restorations per batched generation (bounds memory: K copies of the run).

    Returns dict: components, effect (C,) mean indirect effect, effects (cases, seeds, C),
    clean / corrupted (cases, seeds) scores, restored (cases, seeds, C) of the first scorer;
    by_scorer {name: the same five for each scorer}; subject_tokens, embedding_std, settings.
    """
    scorers = as_scorers(scorer)
    if noise_scale <= 0:
        raise ValueError(f"noise_scale={noise_scale}: use a positive multiple of the std")
    if not cases:
        raise ValueError("cases is empty: give (prompt, subject) pairs")
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size}: use an integer >= 1")
    components = list(components)
    positions = subject_tokens(pipe, cases, any(c.startswith("text.") for c in components))
    std = embedding_std(pipe, [prompt for prompt, _ in cases])
    corruption = Corruption()
    shape = (1,) + tuple(pipe.text_encoder.output.shape[1:])
    scores = {name: {"clean": np.zeros((len(cases), len(seeds))),
                     "corrupted": np.zeros((len(cases), len(seeds))),
                     "restored": np.zeros((len(cases), len(seeds), len(components)))}
              for name in scorers}

    def score(key, c, s, images, prompt, where=()):
        for name, scorer_fn in scorers.items():
            scores[name][key][(c, s) + where] = scorer_fn(images, prompt)

    chunks = [components[i:i + chunk_size] for i in range(0, len(components), chunk_size)]
    bar = tqdm(total=len(cases) * len(seeds) * len(chunks), desc="causal trace",
               disable=not progress)
    for c, ((prompt, _), tokens) in enumerate(zip(cases, positions)):
        for s, seed in enumerate(seeds):
            noise = pipe.sampler.initial_noise(1, seed).numpy()
            clean, clean_image = clean_run(pipe, prompt, noise, components, num_steps, guidance)
            corruption.set(shape, tokens, noise_scale * std, seed=10_000 + seed)
            corrupted_image = restored_images(pipe, prompt, noise, clean, corruption, [[]],
                                              num_steps, guidance)
            score("clean", c, s, clean_image, prompt)
            score("corrupted", c, s, corrupted_image, prompt)
            start = 0
            for chunk in chunks:
                images = restored_images(pipe, prompt, noise, clean, corruption,
                                         [[name] for name in chunk], num_steps, guidance, steps)
                score("restored", c, s, images, prompt, (slice(start, start + len(chunk)),))
                start += len(chunk)
                bar.update()
    bar.close()
    for part in scores.values():
        part["effects"] = part["restored"] - part["corrupted"][..., None]
        part["effect"] = part["effects"].mean(axis=(0, 1))
    first = scores[next(iter(scorers))]
    return {
        "components": components,
        **{key: first[key] for key in ("effect", "effects", "clean", "corrupted", "restored")},
        "by_scorer": scores,
        "subject_tokens": positions,
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
    return np.array([[effect.get(f"{text_layer_site(i, kind)}@{t}", np.nan) for t in tokens]
                     for i in range(num_layers)])


def rank_stability(effects_a, effects_b):
    """Spearman rank correlation (and p-value) between two effect vectors over the same
    components (e.g. from two disjoint seed sets)."""
    from scipy.stats import spearmanr

    rho, p = spearmanr(np.asarray(effects_a), np.asarray(effects_b))
    return float(rho), float(p)


def seed_split_stability(result, min_seeds=4):
    """Rank stability of the effects across two disjoint halves of the seeds.

    Returns None for fewer than `min_seeds` seeds, else {"seeds_a", "seeds_b", and for each part
    ("all", "unet", "text") with more than two components: {"spearman", "p_value"}}: the Spearman
    correlation of the mean effects measured on the first and on the second half of the seeds.
    """
    seeds = result["seeds"]
    if len(seeds) < min_seeds:
        return None
    half = len(seeds) // 2
    effects = np.asarray(result["effects"])  # (cases, seeds, components)
    components = result["components"]
    stability = {"seeds_a": seeds[:half], "seeds_b": seeds[half:]}
    parts = {"all": list(range(len(components))),
             "unet": [i for i, c in enumerate(components) if not c.startswith("text.")],
             "text": [i for i, c in enumerate(components) if c.startswith("text.")]}
    for part, index in parts.items():
        if len(index) > 2:
            rho, p = rank_stability(effects[:, :half][..., index].mean((0, 1)),
                                    effects[:, half:][..., index].mean((0, 1)))
            stability[part] = {"spearman": rho, "p_value": p}
    return stability


def token_labels(pipe, prompt, subject, tokens=None):
    """Labels "position:token" of the prompt's tokens at `tokens` (default: all), the subject's
    shown as "<subject>": tiny's words or the BPE pieces (`</w>` dropped)."""
    tokenizer = pipe.tokenizer
    vocabulary = getattr(tokenizer, "vocabulary", None)
    ids = np.asarray(pipe.tokens([prompt]))[0]
    tokens = range(len(ids)) if tokens is None else tokens
    if vocabulary is None:  # keras-cv's SimpleTokenizer: id -> BPE piece
        pieces = getattr(tokenizer, "decoder", {})
        vocabulary = {i: pieces.get(int(i), str(int(i))).replace("</w>", "") for i in ids}
    subject_positions = set(Tokens(pipe).span(prompt, subject).positions)
    return [f"{t}:<subject>" if t in subject_positions else f"{t}:{vocabulary[int(ids[t])]}"
            for t in tokens]
