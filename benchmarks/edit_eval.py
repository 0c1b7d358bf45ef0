"""Efficacy, generality and specificity of closed-form edits on tiny, and the edit's own time.

    python benchmarks/edit_eval.py --concepts=sneaker,coat,dress --num_seeds=1 --num_steps=10
    python benchmarks/edit_eval.py --scorers=classes,judge,clip    # the table by each scorer

Edits each concept to a target (the class five places on in Fashion-MNIST's order unless
--target is given) with each --methods entry, judges the cells (editing/evaluate.py) and times
the closed form on tiny's and on SD-sized random matrices. Writes --output (JSON).
"""

import time

from absl import app
from absl import flags

METHODS = ("diffquickfix", "diffquickfix_keep", "diffquickfix_keep_half", "diffquickfix_concept",
           "locoedit", "locoedit_keep", "locoedit_keep_half")
flags.DEFINE_list("concepts", ["sneaker", "coat", "dress", "bag", "trouser"], "Concept words.")
flags.DEFINE_string("target", None, "One target for every concept (default: class + 5).")
flags.DEFINE_list("methods", list(METHODS), f"Any of {METHODS}.")
flags.DEFINE_list("layers", ["4", "5", "6", "7", "8"], "locoedit's cross-attention layers "
                  "(LocoGen's best window of 5 for sneaker -> bag on tiny, 4 seeds: python "
                  "scripts/edit_model.py --method=locoedit --window=5 --num_seeds=4; windows of 2 "
                  "reach at most 0.5).")
flags.DEFINE_list("others", ["t-shirt", "boot"], "The other item of two-item prompts.")
SCORERS = ("classes", "judge", "clip")
flags.DEFINE_list("scorers", ["classes"], f"Any of {SCORERS}: 'classes' the judged class of "
                  "each cell (editing.evaluate.evaluate_edit), 'judge' / 'clip' the scored "
                  "protocol (evaluate_edit_scored) by the judge or the tiny CLIP.")
flags.DEFINE_integer("num_seeds", 1, "Seeds per prompt.")
flags.DEFINE_integer("num_steps", 10, "DDIM steps.")
flags.DEFINE_string("output", "figures/editing/edit_eval.json", "Where to write the JSON.")
flags.DEFINE_string("bundle_dir", None, "A tiny bundle to edit instead of the shipped one (e.g. a "
                    "candidate from scripts/train_tiny.py).")
FLAGS = flags.FLAGS


def time_closed_form(repeats=5):
    """Median seconds of ridge_update on SD-sized problems (random, 20 key rows)."""
    import numpy as np

    from keras_sd_interp.editing import ridge_update

    rng = np.random.default_rng(0)
    out = {}
    for d_in, d_out in ((768, 768), (768, 320), (64, 64)):
        kernel = rng.normal(size=(d_in, d_out)).astype(np.float32)
        keys, targets = rng.normal(size=(20, d_in)), rng.normal(size=(20, d_out))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            ridge_update(kernel, keys, targets)
            times.append(time.perf_counter() - start)
        out[f"{d_in}x{d_out}"] = float(np.median(times))
    return out


def keep_set(method, concept, target):
    """The keep set of a method: "_keep" every other class, "_keep_half" every second one of
    them (the rest are held out: their specificity measures what the keep set does not cover)."""
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    others = [c for c in CLASS_NAMES if c not in (concept, target)]
    if method.endswith("_keep"):
        return others
    return others[::2] if method.endswith("_keep_half") else []


def make_edit(pipe, method, concept, target, layers):
    from keras_sd_interp import editing

    keep = keep_set(method, concept, target)
    if method.startswith("diffquickfix") and method != "diffquickfix_concept":
        return editing.diffquickfix(pipe, concept, target, positions="all", keep=keep)
    if method == "diffquickfix_concept":
        return editing.diffquickfix(pipe, concept, target, positions="concept")
    return editing.locoedit(pipe, [(concept, target)], layers, positions="all", keep=keep)


def main(argv):
    del argv
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    bad = [w for w in FLAGS.concepts + FLAGS.others + ([FLAGS.target] if FLAGS.target else [])
           if w not in CLASS_NAMES]
    if bad:
        raise app.UsageError(f"unknown class words {bad}; valid: {list(CLASS_NAMES)}")
    bad = [m for m in FLAGS.scorers if m not in SCORERS]
    if bad:
        raise app.UsageError(f"--scorers {bad}: use any of {SCORERS}")
    bad = [m for m in FLAGS.methods if m not in METHODS]
    if bad:
        raise app.UsageError(f"--methods {bad}: use any of {METHODS}")

    import numpy as np

    from keras_sd_interp import io
    from keras_sd_interp import scoring
    from keras_sd_interp.editing.evaluate import (evaluate_edit, evaluate_edit_scored,
                                                  scored_cases, scored_choices,
                                                  unedited_classes)
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.models import load_pipeline

    pipe, judge = load_pipeline("tiny", bundle_dir=FLAGS.bundle_dir), load_judge()
    scorers = {"judge": scoring.JudgeScorer(judge)}
    if "clip" in FLAGS.scorers:
        scorers["clip"] = scoring.tiny_clip_scorer()
    layers = [int(i) for i in FLAGS.layers]
    seeds = list(range(FLAGS.num_seeds))
    rows = []
    for concept in FLAGS.concepts:
        target = FLAGS.target or CLASS_NAMES[(CLASS_NAMES.index(concept) + 5) % 10]
        others = [o for o in FLAGS.others if o not in (concept, target)]
        befores = {}
        for name in FLAGS.scorers:
            if name == "classes":
                befores[name] = unedited_classes(pipe, judge, concept, target, others,
                                                 FLAGS.num_steps, seeds=seeds)
            else:
                sets, candidates = scored_cases(pipe, concept, target, others)
                cases = sets["efficacy"] + sets["generality"] + sets["specificity"]
                befores[name] = scored_choices(pipe, scorers[name], cases, candidates,
                                               FLAGS.num_steps, 5.0, seeds)
        for method, name in [(m, n) for m in FLAGS.methods for n in FLAGS.scorers]:
            start = time.perf_counter()
            edit = make_edit(pipe, method, concept, target, layers)
            build = time.perf_counter() - start
            if name == "classes":
                row = evaluate_edit(pipe, judge, edit, concept, target, others,
                                    FLAGS.num_steps, seeds=seeds, before=befores[name])
            else:
                row = evaluate_edit_scored(pipe, scorers[name], edit, concept, target, others,
                                           FLAGS.num_steps, seeds=seeds, before=befores[name])
                row["specificity_by_class"] = {}
            row.update(method=method, scorer=name, build_seconds=build)
            kept = keep_set(method, concept, target)
            if method.endswith("_keep_half") and name == "classes":
                by_class = row["specificity_by_class"]
                row["specificity_kept"] = float(np.mean([by_class[c] for c in kept]))
                row["specificity_held_out"] = float(np.mean(
                    [v for c, v in by_class.items() if c not in kept]))
            rows.append(row)
            print(f"{method:22s} {name:8s} {concept:>8s} -> {target:8s} efficacy {row['efficacy']:.2f}  "
                  f"generality {row['generality']:.2f}  specificity {row['specificity']:.2f}")
    summary = {}
    for method, name in [(m, n) for m in FLAGS.methods for n in FLAGS.scorers]:
        mine = [r for r in rows if r["method"] == method and r["scorer"] == name]
        keys = ["efficacy", "generality", "specificity", "efficacy_before", "build_seconds"]
        keys += [k for k in ("specificity_kept", "specificity_held_out") if k in mine[0]]
        summary[f"{method}/{name}"] = {key: float(np.mean([r[key] for r in mine]))
                                       for key in keys}
        print(f"{method:22s} {name:8s} mean: " + "  ".join(
            f"{k} {v:.3f}" for k, v in summary[f"{method}/{name}"].items()))
    timing = time_closed_form()
    print("closed-form seconds:", timing)
    io.save_json(FLAGS.output, {"summary": summary, "rows": rows, "closed_form_seconds": timing,
                                "layers": layers, "seeds": seeds, "num_steps": FLAGS.num_steps,
                                "others": FLAGS.others})
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
