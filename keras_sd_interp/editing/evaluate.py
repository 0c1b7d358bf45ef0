"""The editing papers' protocol: efficacy, generality, specificity; judged per cell on tiny
(`evaluate_edit`), or by any scorer, judge or CLIP-Score, on tiny and SD v1.4
(`evaluate_edit_scored`, below).

- efficacy: the edit's own prompts ("a {concept}", "a {concept} and a {other}") whose concept
  cell is judged as the target;
- generality: paraphrases not used to fit the edit ("a {other} and a {concept}": the concept on
  the right) judged as the target;
- specificity: other classes' prompts ("a {x}", x not the concept or target) whose judged class
  is unchanged by the edit.
"""

import numpy as np

from keras_sd_interp.editing.methods import swap_phrase
from keras_sd_interp.scoring.judge import subject_spec


def edit_prompts(concept, target, others):
    """{"efficacy": [(prompt, word)], "generality": [...], "specificity": [...]}: each prompt with
    the word whose cell is judged."""
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    return {
        "efficacy": [(f"a {concept}", concept)]
        + [(f"a {concept} and a {o}", concept) for o in others],
        "generality": [(f"a {o} and a {concept}", concept) for o in others],
        "specificity": [(f"a {x}", x) for x in CLASS_NAMES if x not in (concept, target)],
    }


def judged_classes(pipe, judge, cases, num_steps, guidance, seeds):
    """Judged class (len(cases), len(seeds)) of each case's word cell, one generation per seed."""
    from keras_sd_interp.data import compositions
    from keras_sd_interp.judge import predict_classes

    prompts = [prompt for prompt, _ in cases]
    specs = [subject_spec(pipe, prompt, word) for prompt, word in cases]
    out = np.zeros((len(cases), len(seeds)), np.int64)
    for s, seed in enumerate(seeds):
        images = pipe.sampler.generate(prompts, num_steps=num_steps, seed=seed,
                                       unconditional_guidance_scale=guidance).uint8()
        left, right = compositions.halves(images)
        cells = {"left": left, "right": right, "middle": compositions.middle(images)}
        for i, spec in enumerate(specs):
            out[i, s] = predict_classes(judge, cells[spec["cell"]][i:i + 1])[0][0]
    return out


def unedited_classes(pipe, judge, concept, target, others, num_steps=10, guidance=5.0,
                     seeds=(0,)):
    """Judged classes (cases, seeds) of `evaluate_edit`'s generations without any edit."""
    sets = edit_prompts(concept, target, others)
    cases = sets["efficacy"] + sets["generality"] + sets["specificity"]
    return judged_classes(pipe, judge, cases, num_steps, guidance, seeds)


def evaluate_edit(pipe, judge, edit, concept, target, others, num_steps=10, guidance=5.0,
                  seeds=(0,), before=None):
    """Scores of one edit (applied, judged, undone). `before`: judged classes (cases, seeds) of
    the same generations without the edit (`unedited_classes`; computed when None: pass it to
    share it between edits of one concept). Returns a JSON-ready dict."""
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    sets = edit_prompts(concept, target, others)
    cases = sets["efficacy"] + sets["generality"] + sets["specificity"]
    if before is None:
        before = unedited_classes(pipe, judge, concept, target, others, num_steps, guidance,
                                  seeds)
    edit.apply(pipe)
    try:
        after = judged_classes(pipe, judge, cases, num_steps, guidance, seeds)
    finally:
        edit.undo(pipe)
    n_eff, n_gen = len(sets["efficacy"]), len(sets["generality"])
    target_index = CLASS_NAMES.index(target)
    unchanged = after[n_eff + n_gen:] == before[n_eff + n_gen:]
    return {
        "concept": concept, "target": target,
        "efficacy": float(np.mean(after[:n_eff] == target_index)),
        "generality": float(np.mean(after[n_eff:n_eff + n_gen] == target_index)),
        "specificity": float(np.mean(unchanged)),
        "specificity_by_class": {word: float(np.mean(row))
                                 for (_, word), row in zip(sets["specificity"], unchanged)},
        "efficacy_before": float(np.mean(before[:n_eff] == target_index)),
        "num_images": int(after.size),
    }


# --- The same protocol with any scorer `score(images, texts) -> (n,)` (judge or CLIP-Score) ---
# Each case is a prompt and the phrase in it; the scorer "chooses" among the prompt with that
# phrase replaced by each candidate phrase (the argmax score). With tiny's JudgeScorer and the
# ten class words as candidates the choice is the judged class of the phrase's cell.


def scored_cases(pipe, concept, target, others, prompts=None):
    """{"efficacy", "generality", "specificity": [(prompt, phrase)]} and the candidate phrases.

    tiny: as `edit_prompts`, candidates the ten class words. SD v1.4: efficacy the edit's
    prompts (`prompts` or SD14_TEMPLATES with the concept), generality the held-out templates,
    specificity SD14_HELD_OUT_TEMPLATES[0] and the first template with each of `others`;
    candidates concept, target and others."""
    from keras_sd_interp.editing import methods

    if methods.is_tiny(pipe):
        from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

        return edit_prompts(concept, target, others), list(CLASS_NAMES)
    fitted = methods.edit_prompts_for(pipe, concept, prompts=prompts)
    held_out = [methods.fill(t, concept) for t in methods.SD14_HELD_OUT_TEMPLATES]
    specific = [(methods.fill(t, other), other) for other in others
                for t in (methods.SD14_TEMPLATES[1], methods.SD14_HELD_OUT_TEMPLATES[0])]
    sets = {"efficacy": [(p, concept) for p in fitted],
            "generality": [(p, concept) for p in held_out], "specificity": specific}
    return sets, [concept, target] + [o for o in others if o not in (concept, target)]


def scored_choices(pipe, scorer, cases, candidates, num_steps, guidance, seeds):
    """Index into `candidates` (len(cases), len(seeds)) of the best-scored text per image."""
    from keras_sd_interp.editing.methods import swap_phrase

    prompts = [prompt for prompt, _ in cases]
    texts = [[swap_phrase(prompt, phrase, c) for c in candidates] for prompt, phrase in cases]
    out = np.zeros((len(cases), len(seeds)), np.int64)
    for s, seed in enumerate(seeds):
        images = pipe.sampler.generate(prompts, num_steps=num_steps, seed=seed,
                                       unconditional_guidance_scale=guidance).uint8()
        repeated = np.repeat(images, len(candidates), axis=0)
        scores = scorer(repeated, [t for row in texts for t in row])
        out[:, s] = np.argmax(scores.reshape(len(cases), len(candidates)), axis=1)
    return out


def evaluate_edit_scored(pipe, scorer, edit, concept, target, others, num_steps=10,
                         guidance=5.0, seeds=(0,), prompts=None, before=None):
    """Efficacy / generality / specificity of one edit (applied, scored, undone) by a scorer:
    efficacy and generality the share of images whose best-scored candidate is the target,
    specificity the share of the other prompts' images whose choice the edit leaves unchanged.
    `before`: choices without the edit (computed when None). Returns a JSON-ready dict."""
    sets, candidates = scored_cases(pipe, concept, target, others, prompts)
    cases = sets["efficacy"] + sets["generality"] + sets["specificity"]
    common = (num_steps, guidance, seeds)
    if before is None:
        before = scored_choices(pipe, scorer, cases, candidates, *common)
    edit.apply(pipe)
    try:
        after = scored_choices(pipe, scorer, cases, candidates, *common)
    finally:
        edit.undo(pipe)
    n_eff, n_gen = len(sets["efficacy"]), len(sets["generality"])
    goal = candidates.index(target)
    return {"concept": concept, "target": target,
            "efficacy": float(np.mean(after[:n_eff] == goal)),
            "generality": float(np.mean(after[n_eff:n_eff + n_gen] == goal)),
            "specificity": float(np.mean(after[n_eff + n_gen:] == before[n_eff + n_gen:])),
            "efficacy_before": float(np.mean(before[:n_eff] == goal)),
            "num_images": int(after.size), "candidates": candidates}


def context_reach(pipe, edit, concept, target, prompts):
    """How far `edit` moves the contexts of `prompts` (each naming `concept`) toward those of
    the same prompts naming `target`: per prompt and token, the distance left,
    ||edited - wanted|| / ||original - wanted|| (0: the edit made the target's context;
    1: nothing moved; NaN where the two prompts agree, e.g. before the concept).

    Returns (ratio (P, L) float, moved (P, L), apart (P, L)): the ratio and its two norms."""
    wanted_prompts = [swap_phrase(prompt, concept, target) for prompt in prompts]
    contexts = np.asarray(pipe.encode_prompts(list(prompts) + wanted_prompts))
    original, wanted = contexts[:len(prompts)], contexts[len(prompts):]
    edit.apply(pipe)
    try:
        edited = np.asarray(pipe.encode_prompts(list(prompts)))
    finally:
        edit.undo(pipe)
    moved = np.linalg.norm(edited - wanted, axis=-1)
    apart = np.linalg.norm(original - wanted, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(apart > 1e-6, moved / np.maximum(apart, 1e-12), np.nan)
    return ratio, moved, apart
