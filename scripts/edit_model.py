"""Edits a model in closed form (DiffQuickFix, LocoEdit after LocoGen) and draws prompts before
and after the edit. Concepts are text: the tiny model's class words, or on SD v1.4 any word or
phrase, located through the pipeline's own tokenizer.

    python scripts/edit_model.py --method=diffquickfix --concept=sneaker --target=bag
    python scripts/edit_model.py --method=locoedit --concept=sneaker --target=bag --layers=auto
    python scripts/edit_model.py --method=locoedit --concept=sneaker --target=bag --layers=4,5 \
        --keep=others      # with a keep set: every other class's keys and values stay
    python scripts/edit_model.py --model=sd14 --weights_dir=DIR --method=diffquickfix \
        --concept="Van Gogh" --target="a painting" --prompts_file=van_gogh.txt --keep=Monet

Writes {method}_{concept}_to_{target}[_keep_{words}].npz (the edit: load it with
editing.load_edit and apply(pipe)), .json and _before_after.png under --output_dir.
--layers=auto runs LocoGen first (windows of --window cross-attention layers, scored by
--scorer: the judge (tiny only) or CLIP-Score) and edits the best window.
"""

from absl import app
from absl import flags

from keras_sd_interp.cli import (check_existing_dir, check_float, check_int, check_out_dir,
                                 define_model_flags, pipeline_from_flags)

define_model_flags(mini=True)
flags.DEFINE_enum("method", "diffquickfix", ["diffquickfix", "locoedit"], "Edit method.")
flags.DEFINE_string("concept", "sneaker", "Word or phrase to edit away (tiny: a class word).")
flags.DEFINE_string("target", "bag", "Word or phrase it should become (tiny: a class word).")
flags.DEFINE_string("prompts_file", None, "Prompts the edit is fitted on, one per line, each "
                    "naming --concept (default: the model's templates).")
flags.DEFINE_float("lam", 0.01, "Regulariser lambda (> 0).")
flags.DEFINE_enum("positions", None, ["concept", "span", "all"], "Key rows: the concept's last "
                  "sub-token ('concept', the papers' last subject token), all its sub-tokens "
                  "('span'), or those and every later token ('all'). Default: 'concept' for "
                  "diffquickfix (the papers'), 'all' for locoedit.")
flags.DEFINE_list("keep", [], "Phrases whose outputs the edit must keep (UCE-style); tiny: "
                  "class words, or 'others': every class but the concept and the target.")
flags.DEFINE_string("layers", "auto", "locoedit: comma-separated cross-attention layers, or "
                    "'auto' (LocoGen's best window).")
flags.DEFINE_integer("window", None, "LocoGen window size for --layers=auto (default: tiny 5, "
                     "the cross-attention layers its objects are written over; sd14 2, the "
                     "papers').")
flags.DEFINE_enum("scorer", None, ["judge", "clip"], "LocoGen's scorer: the Fashion-MNIST "
                  "judge (tiny only) or CLIP-Score (tiny: the tiny CLIP). Default: judge on "
                  "tiny, clip on sd14.")
flags.DEFINE_string("clip_preset", "clip-vit-base-patch32", "sd14 --scorer=clip: keras-cv CLIP "
                    "preset (fetched by keras-cv) unless --clip_dir is given.")
flags.DEFINE_string("clip_dir", None, "--scorer=clip: a local CLIP folder (sd14: a keras-cv "
                    "preset folder; tiny: a tiny CLIP bundle, default the shipped one).")
flags.DEFINE_integer("num_steps", 10, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("num_seeds", 2, "Images per prompt.")
flags.DEFINE_string("output_dir", "figures/editing", "Where to write.")
FLAGS = flags.FLAGS

check_float("lam", minimum=0, exclusive_minimum=True)
check_float("guidance", minimum=0)
check_int("num_steps", minimum=1, maximum=1000)
check_int("num_seeds", minimum=1)
check_out_dir("output_dir")
check_existing_dir("clip_dir", "CLIP preset folder")


def _check_words():
    """Tiny: concept, target and keep must be class words; --keep=others expands. Returns the
    keep set's label for file names."""
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    if FLAGS.keep == ["others"]:
        if FLAGS.model != "tiny":
            raise app.UsageError("--keep=others is tiny's (every other class); on sd14 list "
                                 "the phrases to keep, e.g. --keep=Monet,Picasso")
        FLAGS.keep = [c for c in CLASS_NAMES if c not in (FLAGS.concept, FLAGS.target)]
        return "others"
    if FLAGS.model == "tiny":
        for flag in ("concept", "target"):
            if getattr(FLAGS, flag) not in CLASS_NAMES:
                raise app.UsageError(f"--{flag}={getattr(FLAGS, flag)!r}: use one of "
                                     f"{list(CLASS_NAMES)}")
        bad = [w for w in FLAGS.keep if w not in CLASS_NAMES]
        if bad:
            raise app.UsageError(f"--keep words {bad}: use words from {list(CLASS_NAMES)}")
    return "_".join(FLAGS.keep)


def _same(a, b):
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _read_prompts():
    """The --prompts_file lines (None without the flag); UsageError for a missing or empty file
    or a line that does not name --concept."""
    import os
    import re

    if not FLAGS.prompts_file:
        return None
    if not os.path.isfile(FLAGS.prompts_file):
        raise app.UsageError(f"--prompts_file={FLAGS.prompts_file!r} does not exist: give a "
                             "text file with one prompt per line")
    with open(FLAGS.prompts_file, encoding="utf-8") as file:
        prompts = [line.strip() for line in file if line.strip()]
    if not prompts:
        raise app.UsageError(f"--prompts_file={FLAGS.prompts_file!r} holds no prompts")
    pattern = re.compile(r"(?<!\w)" + re.escape(FLAGS.concept.strip()) + r"(?!\w)", re.I)
    missing = [p for p in prompts if not pattern.search(p)]
    if missing:
        raise app.UsageError(f"--prompts_file: {len(missing)} line(s) do not name "
                             f"--concept={FLAGS.concept!r}, e.g. {missing[0]!r}")
    return prompts


def _check_scorer_flags(scorer):
    """The flags only LocoGen reads (--method=locoedit --layers=auto) refused elsewhere, where
    they would be ignored; --clip_preset and --clip_dir checked (files only, no model)."""
    from keras_sd_interp.cli import check_clip_reachable, scorer_problem
    from keras_sd_interp.models.clip import check_preset

    locogen = ["scorer", "clip_preset", "clip_dir", "window"]
    if FLAGS.method != "locoedit" or FLAGS.layers != "auto":
        given = [f"--{name}" for name in locogen if FLAGS[name].present]
        given += ["--layers"] if FLAGS.method == "diffquickfix" and FLAGS["layers"].present else []
        if given:
            raise app.UsageError(f"{', '.join(given)}: only --method=locoedit reads --layers, "
                                 "and only its --layers=auto (LocoGen) reads --scorer, "
                                 "--clip_preset, --clip_dir and --window; they would be ignored")
    problem = scorer_problem(scorer, FLAGS.model, FLAGS.clip_dir)
    if problem:
        raise app.UsageError(problem)
    try:
        check_preset(FLAGS.clip_preset)
        if FLAGS.method == "locoedit" and FLAGS.layers == "auto":  # offline: before the load
            check_clip_reachable(FLAGS.model, scorer, FLAGS.clip_preset, FLAGS.clip_dir,
                                 FLAGS.random_weights)
    except ValueError as error:
        raise app.UsageError(f"--clip_preset: {error}") from None
    except FileNotFoundError as error:
        raise app.UsageError(str(error)) from None


def _window():
    """LocoGen's window: --window, else 5 on tiny (issue 21's model writes an object over the
    cross-attention layers 4-8; no window of 2 moves one) and the papers' 2 on sd14."""
    return FLAGS.window if FLAGS.window is not None else (5 if FLAGS.model == "tiny" else 2)


def _check_flags():
    """Checks the flags (app.UsageError names the bad one). Returns (layers or None for 'auto',
    the keep label, the prompts or None, the scorer name)."""
    for flag in ("concept", "target"):
        if not getattr(FLAGS, flag).strip():
            raise app.UsageError(f"--{flag} is empty: give a word or phrase")
    keep_label = _check_words()
    if _same(FLAGS.concept, FLAGS.target):
        raise app.UsageError("--concept and --target are the same word")
    edited = [w for w in FLAGS.keep if _same(w, FLAGS.concept) or _same(w, FLAGS.target)]
    if edited:
        raise app.UsageError(f"--keep={','.join(FLAGS.keep)} holds {edited}, the edit's own "
                             "concept or target: keeping it would cancel the edit; keep other "
                             "words")
    scorer = FLAGS.scorer or ("judge" if FLAGS.model == "tiny" else "clip")
    if scorer == "judge" and FLAGS.model != "tiny":
        raise app.UsageError("--scorer=judge is tiny's (a Fashion-MNIST classifier); on sd14 "
                             "use --scorer=clip")
    _check_scorer_flags(scorer)
    prompts = _read_prompts()
    window = _window()
    if not 1 <= window <= 16:
        raise app.UsageError(f"--window={window}: use 1..16 (16 cross-attention layers)")
    if FLAGS.layers != "auto":
        try:
            layers = [int(x) for x in FLAGS.layers.split(",")]
        except ValueError:
            raise app.UsageError(f"--layers={FLAGS.layers!r}: 'auto' or integers like 4,5")
        if not layers or any(not 0 <= i < 16 for i in layers):
            raise app.UsageError(f"--layers={FLAGS.layers!r}: indices in 0..15")
        return layers, keep_label, prompts, scorer
    return None, keep_label, prompts, scorer


def make_scorer(name, pipe):
    """The LocoGen scorer named by --scorer for the pipeline."""
    from keras_sd_interp import scoring

    if name == "judge":
        from keras_sd_interp.judge import load_judge

        return scoring.JudgeScorer(load_judge())
    if FLAGS.model == "tiny":
        return scoring.tiny_clip_scorer(*([FLAGS.clip_dir] if FLAGS.clip_dir else []))
    return scoring.sd14_clip_scorer(pipe.tokenizer, FLAGS.clip_preset, FLAGS.clip_dir,
                                    random_weights=FLAGS.random_weights)


def main(argv):
    del argv
    layers, keep_label, prompts, scorer_name = _check_flags()

    import numpy as np

    from keras_sd_interp import editing
    from keras_sd_interp.editing.methods import drawn_prompts
    from keras_sd_interp.reports.editing import write_before_after
    from keras_sd_interp.reports.paths import safe_name

    pipe = pipeline_from_flags(FLAGS)
    common = dict(num_steps=FLAGS.num_steps, guidance=FLAGS.guidance)
    positions = FLAGS.positions or ("concept" if FLAGS.method == "diffquickfix" else "all")
    if FLAGS.method == "diffquickfix":
        edit = editing.diffquickfix(pipe, FLAGS.concept, FLAGS.target, FLAGS.lam,
                                    positions=positions, keep=FLAGS.keep, prompts=prompts)
    else:
        found = None
        if layers is None:
            found = editing.locogen(pipe, make_scorer(scorer_name, pipe), FLAGS.concept,
                                    FLAGS.target, _window(),
                                    prompts=prompts[:1] if prompts else None,
                                    seeds=range(FLAGS.num_seeds), **common)
            layers = found["best"]
            print(f"LocoGen: best window {layers}, target score "
                  f"{found['best_target_score']:.3f} ({scorer_name})")
        edit = editing.locoedit(pipe, [(FLAGS.concept, FLAGS.target)], layers, FLAGS.lam,
                                keep=FLAGS.keep, positions=positions, prompts=prompts)
        if found is not None:
            edit.info["locogen"] = found  # every window's score, written in the JSON
    shown = drawn_prompts(pipe, FLAGS.concept, FLAGS.target, FLAGS.keep, prompts)

    def draw():
        return np.stack([pipe.sampler.generate(
            shown, num_steps=FLAGS.num_steps, seed=seed,
            unconditional_guidance_scale=FLAGS.guidance).uint8()
            for seed in range(FLAGS.num_seeds)], axis=1)

    before = draw()
    edit.apply(pipe)
    after = draw()
    edit.undo(pipe)
    name = safe_name(f"{FLAGS.method}_{FLAGS.concept}_to_{FLAGS.target}" +
                     (f"_keep_{keep_label}" if FLAGS.keep else ""))
    for key, path in write_before_after(edit, shown, before, after, FLAGS.output_dir,
                                        name).items():
        print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
