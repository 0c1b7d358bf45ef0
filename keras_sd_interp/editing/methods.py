"""DiffQuickFix, LocoGen and LocoEdit (Basu et al., ICLR 2024 / ICML 2024), and a multi-concept
LocoEdit with a keep set (UCE's closed form), for text concepts: any word or phrase ("Van Gogh",
"the President of the United States") on SD v1.4, the class words on the tiny model.

    edit = diffquickfix(pipe, "sneaker", "bag")          # an Edit: apply(pipe) / undo(pipe)
    edit = diffquickfix(sd14, "Van Gogh", "a painting", keep=["Monet"])
    found = locogen(pipe, JudgeScorer(judge), "sneaker", "bag", window=2)
    edit = locoedit(pipe, [("sneaker", "bag")], layers=found["best"])

Concepts are located by `lens.tokens.concept_span` through the pipeline's own tokenizer. Each
prompt naming the concept is paired with the same prompt naming the target instead; key rows
are the concept's token rows ("concept": its last sub-token, the papers' last subject token;
"span": every sub-token; "all": the span and every later token), target rows the target's,
aligned from the phrases' last tokens (the text after them is the same in both prompts).

Keys are read through the lens: the text encoder's sites (`text.layer_0.attn.z` / `.attn.out`)
for DiffQuickFix, its output (the U-Net's context rows) for LocoEdit.
"""

import re

import numpy as np

from keras_sd_interp import lens
from keras_sd_interp.editing.closed_form import _check_lam, linear_map_update, ridge_update
from keras_sd_interp.editing.edit import Edit
from keras_sd_interp.lens.names import NUM_TRANSFORMERS, text_layer_site, transformer_site
from keras_sd_interp.lens.text_records import text_contexts, text_site_values
from keras_sd_interp.lens.tokens import Tokens

# Prompt templates of the tiny vocabulary; "{}" is the concept, "{other}" another class.
TEMPLATES = ("a {}", "a {} and a {other}")
# SD v1.4's: the editing papers' prompt forms for objects, people and styles ("{}" the phrase).
SD14_TEMPLATES = ("{}", "a photo of {}", "a painting of {}", "an image of {}",
                  "a picture in the style of {}", "a painting in the style of {}",
                  "{} in a field", "a drawing of {}")
# Paraphrases that no edit is fitted on (the protocol's generality set).
SD14_HELD_OUT_TEMPLATES = ("a high quality photo of {}", "an artwork in the style of {}",
                           "{} on a sunny day")
POSITIONS = ("concept", "span", "all")


def _class_names():
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
    return list(CLASS_NAMES)


def is_tiny(pipe):
    """True for the bundled tiny model (class-word concepts), False for SD v1.4 (any phrase)."""
    return pipe.config.name == "tiny"


def default_templates(pipe):
    """The prompt templates edits are fitted on by default: TEMPLATES (tiny), SD14_TEMPLATES."""
    return TEMPLATES if is_tiny(pipe) else SD14_TEMPLATES


def check_word(word, what="concept"):
    """Raises ValueError unless `word` is one of the tiny model's class words."""
    if word not in _class_names():
        raise ValueError(f"unknown {what} word {word!r}; valid: {_class_names()}")


def check_phrase(pipe, phrase, what="concept"):
    """Raises ValueError unless `phrase` can be a concept of `pipe`: on tiny a class word, on
    SD v1.4 any text with at least one token."""
    if is_tiny(pipe):
        return check_word(phrase, what)
    if not isinstance(phrase, str) or not Tokens(pipe).split(phrase):
        raise ValueError(f"{what} {phrase!r} has no tokens: give a word or phrase, e.g. "
                         "'Van Gogh' or 'the President of the United States'")


def _same(a, b):
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def check_keep(keep, edited, pipe=None):
    """Raises ValueError unless every keep phrase is valid (tiny: a class word) and outside
    `edited` (the edit's concepts and targets: keeping one of them would cancel the edit)."""
    for word in keep:
        if pipe is None:
            check_word(word, "keep")
        else:
            check_phrase(pipe, word, "keep")
    inside = [word for word in keep if any(_same(word, e) for e in edited)]
    if inside:
        raise ValueError(f"keep={list(keep)} holds {inside}, the edit's own concept or target: "
                         "keeping it would cancel the edit; keep other words")


def check_pair(concept, target, pipe=None):
    """Raises ValueError unless concept and target are two different valid phrases (class words
    on tiny, or when no pipeline is given)."""
    for phrase, what in ((concept, "concept"), (target, "target")):
        if pipe is None:
            check_word(phrase, what)
        else:
            check_phrase(pipe, phrase, what)
    if _same(concept, target):
        raise ValueError(f"concept and target are both {concept!r}: the edit would do nothing; "
                         "give a different target")


def fill(template, phrase, other=None):
    """A template with "{}" = phrase (and "{other}" = other)."""
    return template.format(phrase, other=other)


def concept_prompts(concept, templates=TEMPLATES, others=None, exclude=()):
    """Prompts of `templates` with `concept` filled in and "{other}" set to every phrase of
    `others` (default: every tiny class but the concept and `exclude`). Returns (prompts, token
    positions of the concept: prompt word index + 1 for the start token; tiny's one-word
    concepts; use `concept_rows` for phrases)."""
    if others is None:
        check_word(concept)
        others = [c for c in _class_names() if c != concept and c not in exclude]
    prompts = []
    for template in templates:
        fills = others if "{other}" in template else [None]
        prompts += [fill(template, concept, other) for other in fills]
    words = [prompt.split() for prompt in prompts]
    positions = [w.index(concept) + 1 if concept in w else None for w in words]
    return prompts, positions


def swap_phrase(prompt, phrase, replacement):
    """`prompt` with the first occurrence of `phrase` (case-insensitive, whole words) replaced;
    ValueError naming the prompt when the phrase is not in it."""
    pattern = re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", re.IGNORECASE)
    if not pattern.search(prompt):
        raise ValueError(f"phrase {phrase!r} is not in the prompt {prompt!r}: every prompt must "
                         "name the concept")
    return pattern.sub(lambda _: replacement, prompt, count=1)


def _swap(prompt, position, word):
    words = prompt.split()
    words[position - 1] = word
    return " ".join(words)


def row_pairs(source_span, target_span, which, length):
    """Aligned (source row, target row) token positions of a concept and its target.

    "concept": the last sub-tokens; "span": each concept sub-token with the target's aligned
    from the end (clamped to its first); "all": the span and every later row to `length`, row
    last + j with the target's last + j (the text after both phrases is the same)."""
    if which not in POSITIONS:
        raise ValueError(f"positions={which!r}: use one of {POSITIONS}")
    first, last = source_span.first, target_span.first
    if which == "concept":
        return [(first[-1], last[-1])]
    pairs = [(s, last[max(0, len(last) - len(first) + i)]) for i, s in enumerate(first)]
    if which == "all":
        tail = min(length - first[-1], length - last[-1])
        pairs += [(first[-1] + j, last[-1] + j) for j in range(1, tail)]
    return pairs


def concept_rows(pipe, prompts, concept, target, which):
    """Target prompts and aligned row indices for prompts naming `concept`.

    Returns (target prompts (n,), source index [(prompt i, row t)], target index [(i, t')])."""
    tokens = Tokens(pipe)
    swapped = [swap_phrase(p, concept, target) for p in prompts]
    source_index, target_index = [], []
    for i, (prompt, other) in enumerate(zip(prompts, swapped)):
        pairs = row_pairs(tokens.span(prompt, concept), tokens.span(other, target), which,
                          tokens.length)
        source_index += [(i, s) for s, _ in pairs]
        target_index += [(i, t) for _, t in pairs]
    return swapped, source_index, target_index


def _shift(index, offset):
    return [(i + offset, t) for i, t in index]


def _gather(values, index):
    """values (n, L, D) at [(i, t)] -> (rows, D)."""
    return np.stack([values[i, t] for i, t in index])


def edit_prompts_for(pipe, phrase, templates=None, prompts=None, exclude=()):
    """The prompts an edit of `phrase` is fitted on: `prompts` (each must name the phrase) or
    `templates` (default: the model's) filled with it (tiny: "{other}" with other classes)."""
    if prompts:
        prompts = list(prompts)
        for prompt in prompts:
            Tokens(pipe).span(prompt, phrase)  # every prompt names the phrase, else ValueError
        return prompts
    templates = templates or default_templates(pipe)
    if is_tiny(pipe):
        return concept_prompts(phrase, templates, exclude=exclude)[0]
    return concept_prompts(phrase, templates, others=[])[0]


def naming(pipe, prompts, phrase):
    """The prompts that name `phrase` (None when `prompts` is None); ValueError when none does."""
    if prompts is None:
        return None
    tokens = Tokens(pipe)
    found = [p for p in prompts if occurrences_of(tokens, p, phrase)]
    if not found:
        raise ValueError(f"none of the {len(prompts)} prompts names {phrase!r} (e.g. "
                         f"{prompts[0]!r}): give prompts that name each concept")
    return found


def occurrences_of(tokens, prompt, phrase):
    """True when `phrase`'s tokens occur in `prompt`'s."""
    try:
        tokens.span(prompt, phrase)
    except ValueError:
        return False
    return True


def keep_prompts_for(pipe, keep, concept, templates=None, prompts=None, exclude=()):
    """Prompts of each keep phrase: the concept's prompt file lines with the keep phrase in the
    concept's place, or the templates filled with it."""
    out = []
    for word in keep:
        if prompts:
            out.append([swap_phrase(p, concept, word) for p in prompts])
        else:
            out.append(edit_prompts_for(pipe, word, templates, exclude=exclude))
    return out


def keep_rows(pipe, prompt_sets, keep, which):
    """Row index [(prompt i, row t)] of each keep phrase in its prompts, flattened over the
    sets in order. prompt_sets: one list of prompts per keep phrase."""
    tokens = Tokens(pipe)
    prompts, index = [], []
    for word, own in zip(keep, prompt_sets):
        for prompt in own:
            span = tokens.span(prompt, word)
            index += [(len(prompts), s) for s, _ in row_pairs(span, span, which, tokens.length)]
            prompts.append(prompt)
    return prompts, index


def text_records(pipe, prompts, sites):
    """Text-encoder sites for `prompts` without running the U-Net: {site: (n, L, D)}, by one
    compiled call of the encoder cut after the sites' layer (`lens.text_records`)."""
    return text_site_values(pipe, prompts, sites)


def contexts(pipe, prompts):
    """The U-Net's context rows (n, L, D) for `prompts` (the text encoder's output)."""
    return text_contexts(pipe, prompts)


def diffquickfix(pipe, concept, target, lam=0.01, layer=0, templates=None,
                 positions="concept", keep=(), prompts=None):
    """DiffQuickFix: closed-form update of text layer `layer`'s self-attention output projection.

    Keys: its inputs (`text.layer_{layer}.attn.z`) at the concept's rows over the prompts;
    targets: its outputs (`.attn.out`, minus the bias) at the target's rows of the same prompts
    naming the target instead.

    Args:
        concept, target: phrases (tiny: class words).
        templates: prompt templates ("{}" the concept; default the model's), or
        prompts: prompts that name the concept (e.g. a prompt file's lines); each must.
        positions: "concept" (the last subject token, the paper's), "span" or "all".
        keep: phrases whose rows' outputs should stay (extra rows, UCE-style), in the same
            prompts with the keep phrase in the concept's place.
    Returns an `Edit` (not applied).
    """
    check_pair(concept, target, pipe)
    _check_lam(lam)
    check_keep(keep, (concept, target), pipe)
    fitted = edit_prompts_for(pipe, concept, templates, prompts, exclude=(target,))
    swapped, source_index, target_index = concept_rows(pipe, fitted, concept, target, positions)
    z_site, out_site = text_layer_site(layer, "attn.z"), text_layer_site(layer, "attn.out")
    name = text_layer_site(layer, "attn.out_proj")
    kernel, bias = lens.dense_kernel(pipe, name)
    keep_all, keep_index = [], []
    if keep:
        sets = keep_prompts_for(pipe, keep, concept, templates, prompts,
                                exclude=(concept, target))
        keep_all, keep_index = keep_rows(pipe, sets, keep, positions)
    # One batched call for every prompt: the concept's, the target's, the keep phrases'.
    records = text_records(pipe, fitted + swapped + keep_all, [z_site, out_site])
    n = len(fitted)
    keys = _gather(records[z_site], source_index)
    targets = _gather(records[out_site], _shift(target_index, n)) - bias
    keep_keys = _gather(records[z_site], _shift(keep_index, 2 * n)) if keep else None
    new_kernel = ridge_update(kernel, keys, targets, lam, keep_keys)
    return Edit({name: new_kernel}, {"method": "diffquickfix", "concept": concept,
                                     "target": target, "lam": lam, "layer": layer,
                                     "positions": positions, "keep": list(keep),
                                     "num_keys": int(len(keys)), "prompts": fitted})


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


def locoedit(pipe, pairs, layers, lam=0.01, keep=(), templates=None, positions="all",
             projections=("to_k", "to_v"), prompts=None):
    """LocoEdit: closed-form W_K, W_V update of the cross-attention `layers` so that each
    concept's context rows give the keys and values of its target's rows.

    Args:
        pairs: [(concept, target), ...]: one pair is LocoEdit; several are solved at once.
        layers: transformer indices (e.g. LocoGen's best window).
        keep: phrases whose keys and values must stay (UCE's preservation rows).
        templates / prompts: as `diffquickfix`; each pair is fitted on the prompts that name
            its concept (one pair at least each); keep phrases take the first pair's concept's
            place in its prompts.
        positions: "all" (the concept's rows and every later one; the default, as
            `scripts/edit_model.py`'s), "span", or "concept" (the last subject token only, as the
            paper; on tiny that edits nothing: efficacy 0, the item lives in the later tokens).
    Returns an `Edit` (not applied).
    """
    _check_lam(lam)
    check_layers(pipe, layers)
    rows = locoedit_rows(pipe, pairs, keep, templates, positions, prompts)
    update = linear_map_update(rows["keys"], rows["wanted"], lam, rows["keep_keys"])
    kernels = {}
    for i in layers:
        for projection in projections:
            name = transformer_site(i, f"attn2.{projection}")
            kernel = lens.dense_kernel(pipe, name)[0]
            kernels[name] = (update @ kernel.astype(np.float64)).astype(kernel.dtype)
    keys, fitted = rows["keys"], rows["prompts"]
    return Edit(kernels, {"method": "locoedit", "pairs": [list(p) for p in pairs],
                          "layers": [int(i) for i in layers], "lam": lam, "keep": list(keep),
                          "positions": positions, "num_keys": int(len(keys)),
                          "prompts": fitted})


def locoedit_rows(pipe, pairs, keep=(), templates=None, positions="all", prompts=None):
    """LocoEdit's rows, every prompt through the text encoder in ONE batched call.

    Returns dict: keys (n, D) the concepts' context rows, wanted (n, D) their targets' rows,
    keep_keys (m, D) or None, prompts (the fitted prompts naming the concepts)."""
    if not pairs:
        raise ValueError("pairs is empty: give [(concept, target), ...]")
    for concept, target in pairs:
        check_pair(concept, target, pipe)
    edited = tuple(word for pair in pairs for word in pair)
    check_keep(keep, edited, pipe)
    batch, source_index, target_index, fitted = [], [], [], []
    for concept, target in pairs:
        own = edit_prompts_for(pipe, concept, templates, naming(pipe, prompts, concept),
                               exclude=edited)
        swapped, source, target_rows = concept_rows(pipe, own, concept, target, positions)
        source_index += _shift(source, len(batch))
        target_index += _shift(target_rows, len(batch) + len(own))
        batch += own + swapped
        fitted += own
    keep_index = []
    if keep:
        concept = pairs[0][0]
        sets = keep_prompts_for(pipe, keep, concept, templates, naming(pipe, prompts, concept),
                                exclude=edited)
        keep_all, index = keep_rows(pipe, sets, keep, positions)
        keep_index = _shift(index, len(batch))
        batch += keep_all
    values = contexts(pipe, batch)
    return {"keys": _gather(values, source_index), "wanted": _gather(values, target_index),
            "keep_keys": _gather(values, keep_index) if keep else None, "prompts": fitted}


def locoedit_unshared(pipe, pairs, layers, lam=0.01, keep=(), positions="all"):
    """{kernel name: K'} as LocoEdit computed them before the shared solve: one text-encoder
    call per pair and one for the keep set, one `ridge_update` per kernel, the default
    templates. Kept as the reference that `locoedit` must equal (tests) and the baseline of
    `benchmarks/edit_timing_sd14.py`."""
    edited = tuple(word for pair in pairs for word in pair)
    keys, wanted = [], []
    for concept, target in pairs:
        own = edit_prompts_for(pipe, concept, exclude=edited)
        swapped, source, target_rows = concept_rows(pipe, own, concept, target, positions)
        both = contexts(pipe, own + swapped)
        keys.append(_gather(both, source))
        wanted.append(_gather(both, _shift(target_rows, len(own))))
    keys, wanted, keep_keys = np.concatenate(keys), np.concatenate(wanted), None
    if keep:
        sets = keep_prompts_for(pipe, keep, pairs[0][0], exclude=edited)
        keep_all, index = keep_rows(pipe, sets, keep, positions)
        keep_keys = _gather(contexts(pipe, keep_all), index)
    kernels = {}
    for i in layers:
        for projection in ("to_k", "to_v"):
            name = transformer_site(i, f"attn2.{projection}")
            kernel = lens.dense_kernel(pipe, name)[0]
            kernels[name] = ridge_update(kernel, keys, wanted @ kernel, lam, keep_keys)
    return kernels


def locogen(pipe, scorer, concept, target, window=2, prompts=None, seeds=(0,), num_steps=25,
            guidance=5.0):
    """LocoGen: for every window of `window` consecutive cross-attention layers, generate the
    concept prompts with the target prompt's attn2 keys and values in the window (the original
    prompt's elsewhere), all windows as ONE batched generation per prompt and seed.

    Args:
        scorer: `score(images uint8, texts) -> (n,)` (scoring: `JudgeScorer` on tiny, a
            `ClipScorer` (CLIP-Score) on SD v1.4); each image is scored against the target
            prompt (the prompt naming the target instead of the concept) and the prompt itself.
        prompts: prompts naming the concept (default: "a {concept}" on tiny, "a painting of
            {concept}" on SD v1.4).
    Returns dict: windows (W lists of layer indices), target_score (W,) mean score of the
    target prompt, concept_score (W,), reference target_score of the original and of the
    target prompt, best (the window with the highest target_score).
    """
    check_pair(concept, target, pipe)
    layers = cross_attention_layers(pipe)
    if not 1 <= window <= len(layers):
        raise ValueError(f"window={window}: use 1..{len(layers)} (the model has {len(layers)} "
                         "cross-attention layers)")
    windows = [layers[s:s + window] for s in range(len(layers) - window + 1)]
    prompts = list(prompts or [f"a {concept}" if is_tiny(pipe) else f"a painting of {concept}"])
    for prompt in prompts:
        Tokens(pipe).span(prompt, concept)
    target_score, concept_score, original, swapped = [], [], [], []
    for prompt in prompts:
        target_prompt = swap_phrase(prompt, concept, target)
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
            target_score.append(scorer(images, target_prompt))
            concept_score.append(scorer(images, prompt))
            original.append(scorer(plain, target_prompt)[0])
            swapped.append(scorer(target_image, target_prompt)[0])
    target_score = np.mean(target_score, axis=0)
    best = int(np.argmax(target_score))
    return {"concept": concept, "target": target, "window": window, "windows": windows,
            "target_score": target_score.tolist(),
            "concept_score": np.mean(concept_score, 0).tolist(),
            "original_target_score": float(np.mean(original)),
            "target_prompt_target_score": float(np.mean(swapped)),
            "best": windows[best], "best_target_score": float(target_score[best]),
            "prompts": list(prompts), "seeds": [int(s) for s in seeds]}


def drawn_prompts(pipe, concept, target, keep=(), prompts=None):
    """Prompts to draw before and after an edit: on tiny the concept alone, with another class
    on each side, and that class alone; on SD v1.4 the first two fitted prompts, a held-out
    paraphrase and (with a keep set) the first prompt naming the first keep phrase instead."""
    if is_tiny(pipe):
        other = "coat" if "coat" not in (concept, target) else "dress"
        return [f"a {concept}", f"a {concept} and a {other}", f"a {other} and a {concept}",
                f"a {other}"]
    fitted = edit_prompts_for(pipe, concept, prompts=prompts)
    shown = fitted[:2] + [fill(SD14_HELD_OUT_TEMPLATES[0], concept)]
    return shown + ([swap_phrase(fitted[0], concept, keep[0])] if keep else [])
