"""Measuring prompt-to-prompt on the bundled tiny model with the Fashion-MNIST judge.

Pairs "a X and a Y": the right item Y is replaced by Z. Per edited image: is the right cell
judged as Z, is the left cell's judged class the source's, and how far are the left cell's
pixels from the source's (mean absolute difference on [0, 1])? The same numbers for the
baseline, plain generation of the edited prompt from the same noise.
"""

import time

import numpy as np

from keras_sd_interp.data import compositions
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.editing.prompt_to_prompt.controllers import Reweight
from keras_sd_interp.editing.prompt_to_prompt.local_blend import LocalBlend
from keras_sd_interp.editing.prompt_to_prompt.run import PromptToPrompt
from keras_sd_interp.judge import predict_classes


def replace_cases(num_sources, num_edits, seed=0):
    """[(X, Y, [Z_1..Z_k])]: distinct X != Y drawn with `seed`, k targets Z != Y."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(num_sources):
        x, y = rng.choice(len(CLASS_NAMES), 2, replace=False)
        targets = rng.choice([c for c in range(len(CLASS_NAMES)) if c != y], num_edits,
                             replace=False)
        cases.append((CLASS_NAMES[x], CLASS_NAMES[y], [CLASS_NAMES[z] for z in targets]))
    return cases


def pair_prompt(left, right):
    return f"a {left} and a {right}"


def seed_noise(pipe, seeds):
    """(n, h, w, 4): the initial latent of each seed."""
    return np.concatenate([pipe.sampler.initial_noise(1, int(s)).numpy() for s in seeds])


def judged(judge, images):
    """images float (m, 32, 64, 1) in [-1, 1] -> (left classes, right classes, right probs)."""
    left, right = compositions.halves(np.clip(images, -1, 1))
    left_classes, _ = predict_classes(judge, left)
    right_classes, right_probs = predict_classes(judge, right)
    return left_classes, right_classes, right_probs


def cell_scores(judge, source, edited, targets):
    """Scores of edited images against their source images.

    Args: source (n, 32, 64, 1); edited (E, n, 32, 64, 1); targets: E class names.
    Returns dict of (E * n,) arrays: new_word (bool), kept_class (bool), left_mad (float).
    """
    num_edits, n = edited.shape[:2]
    flat = edited.reshape((-1,) + edited.shape[2:])
    source_left, _, _ = judged(judge, source)
    left, right, _ = judged(judge, flat)
    wanted = np.repeat([CLASS_NAMES.index(t) for t in targets], n)
    left_pixels = lambda images: compositions.halves(images)[0]  # noqa: E731
    mad = np.abs(left_pixels(flat) - np.tile(left_pixels(source), (num_edits, 1, 1))) / 2
    return {"new_word": right == wanted, "kept_class": left == np.tile(source_left, num_edits),
            "left_mad": mad.mean(axis=(1, 2))}


def summary(scores):
    return {"new_word": float(np.mean(scores["new_word"])),
            "kept_class": float(np.mean(scores["kept_class"])),
            "left_mad": float(np.mean(scores["left_mad"])), "cells": int(len(scores["new_word"]))}


def _merge(store, name, scores):
    for key, values in scores.items():
        store.setdefault(name, {}).setdefault(key, []).append(values)


def replace_eval(pipe, judge, cases, seeds, controller, num_steps=25, guidance=5.0,
                 threshold=0.3, start_blend=0.2, carrier=None):
    """Replace the right item of every case: without blend ("p2p"), with local blend from the
    item words' maps ("p2p_blend", as theirs; "p2p_blend_minmax", the maps scaled to 0..1) and
    from one token position ("p2p_blend_carrier", position `carrier`, default the last end token,
    which carried the right item in the tiny model trained before issue 21), and the plain
    baseline ("plain").
    Returns {condition: summary}, and the first case's images per condition for a figure."""
    carrier = pipe.max_length - 1 if carrier is None else carrier
    noise = seed_noise(pipe, seeds)
    editors, store, first = {}, {}, None
    for left, right, targets in cases:
        source, edits = pair_prompt(left, right), [pair_prompt(left, z) for z in targets]
        blend = LocalBlend([[right]] + [[z] for z in targets], threshold, start_blend)
        scaled = LocalBlend(blend.words, threshold, start_blend, normalize="minmax")
        carried = LocalBlend(threshold=threshold, start_blend=start_blend,
                             positions=[[carrier]] * (1 + len(targets)))
        runs = {}
        for name, local_blend in (("p2p", None), ("p2p_blend", blend),
                                  ("p2p_blend_minmax", scaled),
                                  ("p2p_blend_carrier", carried)):
            if name not in editors:
                editors[name] = PromptToPrompt(pipe, source, edits, controller, local_blend,
                                               num_steps, images_per_prompt=len(seeds))
            result = editors[name].for_prompts(source, edits, local_blend).generate(
                diffusion_noise=noise, guidance=guidance)
            runs[name] = result.edits
            _merge(store, name, cell_scores(judge, result.source, result.edits, targets))
        plain = pipe.sampler.generate(edits, batch_size=len(seeds), num_steps=num_steps,
                                      unconditional_guidance_scale=guidance,
                                      diffusion_noise=np.tile(noise, (len(edits), 1, 1, 1)))
        runs["plain"] = plain.images.reshape(result.edits.shape)
        _merge(store, "plain", cell_scores(judge, result.source, runs["plain"], targets))
        if first is None:
            first = dict(runs, source=result.source, prompts=[source] + edits)
    return {name: summary({k: np.concatenate(v) for k, v in scores.items()})
            for name, scores in store.items()}, first


def reweight_eval(pipe, judge, sources, word, values, seeds, num_steps=25, guidance=5.0):
    """Reweight `word` (the right item of every source) by each value. Returns per value the
    judge's mean probability of the word's class in the right cell and the cell's mean ink
    ([0, 1]); and the first source's images (len(values), n, 32, 64, 1)."""
    noise = seed_noise(pipe, seeds)
    controller = Reweight(1.0, 0.0, words=[word], values=list(values))
    editor, probs, ink, first = None, [], [], None
    for source in sources:
        editor = PromptToPrompt(pipe, source, [source] * len(values), controller,
                                num_steps=num_steps, images_per_prompt=len(seeds)) \
            if editor is None else editor.for_prompts(source, [source] * len(values))
        edits = editor.generate(diffusion_noise=noise, guidance=guidance).edits
        flat = edits.reshape((-1,) + edits.shape[2:])
        _, _, right_probs = judged(judge, flat)
        probs.append(right_probs[:, CLASS_NAMES.index(word)].reshape(edits.shape[:2]))
        right_cells = (compositions.halves(np.clip(flat, -1, 1))[1] + 1) / 2
        ink.append(right_cells.mean(axis=(1, 2)).reshape(edits.shape[:2]))
        first = edits if first is None else first
    return {"values": list(map(float, values)),
            "probability": np.concatenate(probs, 1).mean(1).tolist(),
            "ink": np.concatenate(ink, 1).mean(1).tolist()}, first


def _median_seconds(fn, repeats):
    fn()  # warm: compiled once
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cost(pipe, controller, num_edits, num_steps=25, guidance=5.0, repeats=3, seed=0):
    """Seconds of one run of a source and k edits against one plain generation of the same
    k + 1 prompts in one batch (both compiled, median of `repeats`)."""
    source = pair_prompt("trouser", "boot")
    edits = [pair_prompt("trouser", z) for z in CLASS_NAMES if z not in ("trouser", "boot")]
    edits = edits[:num_edits]
    editor = PromptToPrompt(pipe, source, edits, controller, num_steps=num_steps)
    edited = _median_seconds(lambda: editor.generate(seed=seed, guidance=guidance), repeats)
    noise = editor.noise(seed)
    plain = _median_seconds(lambda: pipe.sampler.generate(
        [source] + edits, num_steps=num_steps, unconditional_guidance_scale=guidance,
        diffusion_noise=noise), repeats)
    return {"edits": num_edits, "p2p_seconds": edited, "plain_seconds": plain,
            "ratio": edited / plain}


def inversion_psnr(pipe, plain, null_text, guidance):
    """Reconstruction PSNR (dB, (n,) each) of the real images: through the autoencoder only
    (the ceiling), plain DDIM inversion generated at `guidance` and at 1, null-text."""
    from keras_sd_interp.editing.prompt_to_prompt.inversion import encode_images, psnr

    real = plain.images
    return {"autoencoder": psnr(pipe.decoder(encode_images(pipe, real)).numpy(), real),
            "ddim": psnr(plain.reconstruct(pipe, guidance=guidance).images, real),
            "ddim_guidance_1": psnr(plain.reconstruct(pipe, guidance=1.0).images, real),
            "null_text": psnr(null_text.reconstruct(pipe).images, real)}


def _one(inverted, k):
    """Image k of a batch inversion as a one-image inversion."""
    import dataclasses

    embeddings = inverted.uncond_embeddings
    return dataclasses.replace(
        inverted, images=inverted.images[k:k + 1], latents=inverted.latents[:, k:k + 1],
        prompts=inverted.prompts[k:k + 1],
        uncond_embeddings=None if embeddings is None else embeddings[:, k:k + 1])


def inverted_replace_eval(pipe, judge, inversions, labels, controller, seed=0):
    """Replace the right item of every inverted real composition "a X and a Y" by a Z != Y
    (drawn with `seed`). `inversions`: {name: Inversion of the same n images}; labels (n, 2).

    Returns ({name: summary (new_word, kept_class against the run's own source image,
    left_mad)}, {name: kept_real: share of edited left cells judged as the real left label},
    the first images {name: (source, edit)}, targets)."""
    rng = np.random.default_rng(seed)
    targets = [CLASS_NAMES[rng.choice([c for c in range(len(CLASS_NAMES)) if c != right])]
               for _, right in labels]
    store, kept_real, first = {}, {}, {}
    for name, inverted in inversions.items():
        editor, hits = None, []
        for k, (target, (left, _)) in enumerate(zip(targets, labels)):
            source = inverted.prompts[k]
            edit = pair_prompt(CLASS_NAMES[left], target)
            editor = PromptToPrompt(pipe, source, [edit], controller, None, inverted.num_steps) \
                if editor is None else editor.for_prompts(source, [edit])
            result = editor.generate(**_one(inverted, k).generate_args())
            _merge(store, name, cell_scores(judge, result.source, result.edits, [target]))
            edited_left, _, _ = judged(judge, result.edits[0])
            hits.append(edited_left == left)
            first.setdefault(name, (result.source, result.edits[0]))
        kept_real[name] = float(np.mean(np.concatenate(hits)))
    summaries = {name: summary({k: np.concatenate(v) for k, v in scores.items()})
                 for name, scores in store.items()}
    return summaries, kept_real, first, targets
