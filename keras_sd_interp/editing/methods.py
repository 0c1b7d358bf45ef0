"""DiffQuickFix, LocoGen and LocoEdit (Basu et al., ICLR 2024 / ICML 2024), and a multi-concept
LocoEdit with a keep set (UCE's closed form), for the tiny model's class words.

    edit = diffquickfix(pipe, "sneaker", "bag")          # an Edit: apply(pipe) / undo(pipe)
    found = locogen(pipe, judge_scorer(judge), "sneaker", "bag", window=2)
    edit = locoedit(pipe, [("sneaker", "bag")], layers=found["best"])

Keys are read through the lens: the text encoder's sites (`text.layer_0.attn.z` / `.attn.out`)
for DiffQuickFix, its output (the U-Net's context rows) for LocoEdit; targets come from the same
prompts with the concept word replaced by the target word.
"""

import numpy as np

from keras_sd_interp import lens
from keras_sd_interp.editing.closed_form import _check_lam, ridge_update
from keras_sd_interp.editing.edit import Edit
from keras_sd_interp.scoring.judge import subject_spec
from keras_sd_interp.lens.names import NUM_TRANSFORMERS, text_layer_site, transformer_site

# Prompt templates of the tiny vocabulary; "{}" is the concept, "{other}" another class.
TEMPLATES = ("a {}", "a {} and a {other}")
POSITIONS = ("concept", "all")


def _class_names():
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
    return list(CLASS_NAMES)


def check_word(word, what="concept"):
    """Raises ValueError unless `word` is one of the tiny model's class words."""
    if word not in _class_names():
        raise ValueError(f"unknown {what} word {word!r}; valid: {_class_names()}")


def check_keep(keep, edited):
    """Raises ValueError unless every keep word is a class word outside `edited` (the edit's
    concepts and targets: keeping one of them would cancel the edit)."""
    for word in keep:
        check_word(word, "keep")
    inside = [word for word in keep if word in edited]
    if inside:
        raise ValueError(f"keep={list(keep)} holds {inside}, the edit's own concept or target: "
                         "keeping it would cancel the edit; keep other words")


def check_pair(concept, target):
    """Raises ValueError unless concept and target are two different class words."""
    check_word(concept)
    check_word(target, "target")
    if concept == target:
        raise ValueError(f"concept and target are both {concept!r}: the edit would do nothing; "
                         "give a different target")


def concept_prompts(concept, templates=TEMPLATES, others=None, exclude=()):
    """Prompts of `templates` with `concept` filled in and "{other}" set to every class in
    `others` (default: every class but the concept and `exclude`). Returns (prompts, token
    positions of the concept: prompt word index + 1 for the start token)."""
    check_word(concept)
    if others is None:
        others = [c for c in _class_names() if c != concept and c not in exclude]
    prompts = []
    for template in templates:
        fills = others if "{other}" in template else [None]
        prompts += [template.format(concept, other=other) for other in fills]
    positions = [prompt.split().index(concept) + 1 for prompt in prompts]
    return prompts, positions


def _swap(prompt, position, word):
    words = prompt.split()
    words[position - 1] = word
    return " ".join(words)


def _rows(values, positions, which, length):
    """Rows of values (n, L, D) at each prompt's concept position ("concept") or from it to the
    end ("all") -> (rows, D)."""
    if which not in POSITIONS:
        raise ValueError(f"positions={which!r}: use one of {POSITIONS}")
    index = [(i, t) for i, p in enumerate(positions)
             for t in ([p] if which == "concept" else range(p, length))]
    return np.stack([values[i, t] for i, t in index])


def text_records(pipe, prompts, sites):
    """Text-encoder sites for `prompts` without running the U-Net: {site: (n, L, D)}."""
    tracer = lens.trace(pipe, record=list(sites))
    pipe.sampler.encode(prompts, "cond", tracer.text_hooks())
    return {site: tracer[site] for site in sites}


def contexts(pipe, prompts):
    """The U-Net's context rows (n, L, D) for `prompts` (the text encoder's output)."""
    return pipe.sampler.encode(prompts).numpy()


def diffquickfix(pipe, concept, target, lam=0.01, layer=0, templates=TEMPLATES,
                 positions="concept", keep=()):
    """DiffQuickFix: closed-form update of text layer `layer`'s self-attention output projection.

    Keys: its inputs (`text.layer_{layer}.attn.z`) at the concept's token over the templates;
    targets: its outputs (`.attn.out`, minus the bias) for the same prompts with the target word.
    `keep`: class words whose prompts' outputs should stay (extra rows, UCE-style).
    Returns an `Edit` (not applied).
    """
    check_pair(concept, target)
    _check_lam(lam)
    check_keep(keep, (concept, target))
    prompts, where = concept_prompts(concept, templates, exclude=(target,))
    z_site, out_site = text_layer_site(layer, "attn.z"), text_layer_site(layer, "attn.out")
    source = text_records(pipe, prompts, [z_site])[z_site]
    wanted = text_records(pipe, [_swap(p, t, target) for p, t in zip(prompts, where)],
                          [out_site])[out_site]
    length = source.shape[1]
    name = text_layer_site(layer, "attn.out_proj")
    kernel, bias = lens.dense_kernel(pipe, name)
    keys = _rows(source, where, positions, length)
    targets = _rows(wanted, where, positions, length) - bias
    keep_keys = None
    if keep:
        keep_prompts, keep_where = [], []
        for word in keep:
            p, w = concept_prompts(word, templates, exclude=(concept, target))
            keep_prompts += p
            keep_where += w
        keep_keys = _rows(text_records(pipe, keep_prompts, [z_site])[z_site], keep_where,
                          positions, length)
    new_kernel = ridge_update(kernel, keys, targets, lam, keep_keys)
    return Edit({name: new_kernel}, {"method": "diffquickfix", "concept": concept,
                                     "target": target, "lam": lam, "layer": layer,
                                     "positions": positions, "keep": list(keep),
                                     "num_keys": int(len(keys))})


def cross_attention_layers(pipe):
    """Indices i of the U-Net's cross-attention layers `spatial_transformer_{i}.attn2`."""
    sites = lens.list_sites(pipe)
    return [i for i in range(NUM_TRANSFORMERS) if transformer_site(i, "attn2") in sites]


def check_layers(pipe, layers):
    """Raises ValueError unless every index names a cross-attention layer."""
    valid = cross_attention_layers(pipe)
    bad = [i for i in layers if i not in valid]
    if bad or not layers:
        raise ValueError(f"cross-attention layers {list(layers)}: give a non-empty list from "
                         f"{valid[0]}..{valid[-1]}")


def locoedit(pipe, pairs, layers, lam=0.01, keep=(), templates=TEMPLATES, positions="all",
             projections=("to_k", "to_v")):
    """LocoEdit: closed-form W_K, W_V update of the cross-attention `layers` so that each
    concept's context rows give the keys and values of its target's rows.

    Args:
        pairs: [(concept, target), ...]: one pair is LocoEdit; several are solved at once.
        layers: transformer indices (e.g. LocoGen's best window).
        keep: class words whose keys and values must stay (UCE's preservation rows).
        positions: "all" (the concept token's row and every later one; the default, as
            `scripts/edit_model.py`'s) or "concept" (its row only, as the paper; on tiny that
            edits nothing: efficacy 0, because the item lives in the later tokens).
    Returns an `Edit` (not applied).
    """
    _check_lam(lam)
    check_layers(pipe, layers)
    if not pairs:
        raise ValueError("pairs is empty: give [(concept, target), ...]")
    for concept, target in pairs:
        check_pair(concept, target)
    edited = {word for pair in pairs for word in pair}
    check_keep(keep, edited)
    source_rows, target_rows = [], []
    for concept, target in pairs:
        prompts, where = concept_prompts(concept, templates, exclude=tuple(edited))
        length = None
        source = contexts(pipe, prompts)
        wanted = contexts(pipe, [_swap(p, t, target) for p, t in zip(prompts, where)])
        length = source.shape[1]
        source_rows.append(_rows(source, where, positions, length))
        target_rows.append(_rows(wanted, where, positions, length))
    keys, wanted = np.concatenate(source_rows), np.concatenate(target_rows)
    keep_keys = None
    if keep:
        keep_rows = []
        for word in keep:
            prompts, where = concept_prompts(word, templates, exclude=tuple(edited))
            keep_rows.append(_rows(contexts(pipe, prompts), where, positions, length))
        keep_keys = np.concatenate(keep_rows)
    kernels = {}
    for i in layers:
        for projection in projections:
            name = transformer_site(i, f"attn2.{projection}")
            kernel = lens.dense_kernel(pipe, name)[0]
            kernels[name] = ridge_update(kernel, keys, wanted @ kernel, lam, keep_keys)
    return Edit(kernels, {"method": "locoedit", "pairs": [list(p) for p in pairs],
                          "layers": [int(i) for i in layers], "lam": lam, "keep": list(keep),
                          "positions": positions, "num_keys": int(len(keys))})


def locogen(pipe, scorer, concept, target, window=2, prompts=None, seeds=(0,), num_steps=25,
            guidance=5.0):
    """LocoGen: for every window of `window` consecutive cross-attention layers, generate the
    concept prompts with the target prompt's attn2 keys and values in the window (the original
    prompt's elsewhere), all windows as ONE batched generation per prompt and seed.

    Args:
        scorer: (images uint8, spec) -> probabilities (see attribution.causal_trace).
        prompts: prompts naming the concept (default: "a {concept}").
    Returns dict: windows (W lists of layer indices), target_prob (W,) mean probability of the
    target class in the concept's cell, concept_prob (W,), reference target_prob of the
    original and of the target prompt, best (the window with the highest target_prob).
    """
    check_word(target, "target")
    layers = cross_attention_layers(pipe)
    if not 1 <= window <= len(layers):
        raise ValueError(f"window={window}: use 1..{len(layers)} (the model has {len(layers)} "
                         "cross-attention layers)")
    windows = [layers[s:s + window] for s in range(len(layers) - window + 1)]
    prompts = prompts or [f"a {concept}"]
    target_prob, concept_prob, original, swapped = [], [], [], []
    for prompt in prompts:
        spec = subject_spec(pipe, prompt, concept)
        target_spec = dict(spec, **{"class": _class_names().index(target)})
        target_prompt = _swap(prompt, spec["tokens"][0], target)
        for seed in seeds:
            noise = pipe.sampler.initial_noise(1, seed).numpy()
            common = dict(num_steps=num_steps, unconditional_guidance_scale=guidance)
            with lens.trace(pipe, record=["*.attn2.k", "*.attn2.v"], half="cond") as source:
                target_image = pipe.sampler.generate(target_prompt, diffusion_noise=noise,
                                                     **common).uint8()
            edits = {}
            for w, chosen in enumerate(windows):
                for i in chosen:
                    for part in ("k", "v"):
                        edits.setdefault(transformer_site(i, f"attn2.{part}"), []).append(
                            lens.patch(source, batch=[w]))
            with lens.trace(pipe, edits=edits, half="cond"):
                images = pipe.sampler.generate(
                    [prompt] * len(windows), diffusion_noise=np.repeat(noise, len(windows), 0),
                    **common).uint8()
            plain = pipe.sampler.generate(prompt, diffusion_noise=noise, **common).uint8()
            target_prob.append(scorer(images, target_spec))
            concept_prob.append(scorer(images, spec))
            original.append(scorer(plain, target_spec)[0])
            swapped.append(scorer(target_image, target_spec)[0])
    target_prob = np.mean(target_prob, axis=0)
    best = int(np.argmax(target_prob))
    return {"concept": concept, "target": target, "window": window, "windows": windows,
            "target_prob": target_prob.tolist(), "concept_prob": np.mean(concept_prob, 0).tolist(),
            "original_target_prob": float(np.mean(original)),
            "target_prompt_target_prob": float(np.mean(swapped)),
            "best": windows[best], "best_target_prob": float(target_prob[best]),
            "prompts": list(prompts), "seeds": [int(s) for s in seeds]}
