"""Edits the tiny model in closed form and draws the prompts before and after the edit.

    python scripts/edit_model.py --method=diffquickfix --concept=sneaker --target=bag
    python scripts/edit_model.py --method=locoedit --concept=sneaker --target=bag --layers=auto
    python scripts/edit_model.py --method=locoedit --concept=sneaker --target=bag --layers=4,5 \
        --keep=others      # with a keep set: every other class's keys and values stay

Writes {method}_{concept}_to_{target}[_keep_{words}].npz (the edit: load it with editing.load_edit and
apply(pipe)), .json and _before_after.png under --output_dir. --layers=auto runs LocoGen first
(windows of --window cross-attention layers) and edits the best window.
"""

from absl import app
from absl import flags

flags.DEFINE_enum("method", "diffquickfix", ["diffquickfix", "locoedit"], "Edit method.")
flags.DEFINE_string("concept", "sneaker", "Class word to edit away.")
flags.DEFINE_string("target", "bag", "Class word it should become.")
flags.DEFINE_float("lam", 0.01, "Regulariser lambda (> 0).")
flags.DEFINE_enum("positions", "all", ["concept", "all"], "Key rows: the concept's token "
                  "('concept', the papers') or it and every later token ('all', tiny's default).")
flags.DEFINE_list("keep", [], "Class words whose outputs the edit must keep (UCE-style), or "
                  "'others': every class but the concept and the target.")
flags.DEFINE_string("layers", "auto", "locoedit: comma-separated cross-attention layers, or "
                    "'auto' (LocoGen's best window).")
flags.DEFINE_integer("window", 2, "LocoGen window size for --layers=auto.")
flags.DEFINE_integer("num_steps", 10, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("num_seeds", 2, "Images per prompt.")
flags.DEFINE_string("output_dir", "figures/editing", "Where to write.")
FLAGS = flags.FLAGS

from keras_sd_interp.cli import check_float, check_int, check_out_dir  # noqa: E402

check_float("lam", minimum=0, exclusive_minimum=True)
check_float("guidance", minimum=0)
check_int("num_steps", minimum=1, maximum=1000)
check_int("num_seeds", minimum=1)
check_out_dir("output_dir")


def _check_flags():
    """Checks the flags (app.UsageError names the bad one); expands --keep=others.
    Returns (layers or None for 'auto', the keep set's label for file names)."""
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

    for flag in ("concept", "target"):
        if getattr(FLAGS, flag) not in CLASS_NAMES:
            raise app.UsageError(f"--{flag}={getattr(FLAGS, flag)!r}: use one of {list(CLASS_NAMES)}")
    if FLAGS.concept == FLAGS.target:
        raise app.UsageError("--concept and --target are the same word")
    if FLAGS.keep == ["others"]:
        FLAGS.keep = [c for c in CLASS_NAMES if c not in (FLAGS.concept, FLAGS.target)]
        keep_label = "others"
    else:
        keep_label = "_".join(FLAGS.keep)
    bad = [w for w in FLAGS.keep if w not in CLASS_NAMES]
    if bad:
        raise app.UsageError(f"--keep words {bad}: use words from {list(CLASS_NAMES)}")
    edited = [w for w in FLAGS.keep if w in (FLAGS.concept, FLAGS.target)]
    if edited:
        raise app.UsageError(f"--keep={','.join(FLAGS.keep)} holds {edited}, the edit's own "
                             "concept or target: keeping it would cancel the edit; keep other "
                             "words")
    if not 1 <= FLAGS.window <= 16:
        raise app.UsageError(f"--window={FLAGS.window}: use 1..16 (16 cross-attention layers)")
    if FLAGS.layers != "auto":
        try:
            layers = [int(x) for x in FLAGS.layers.split(",")]
        except ValueError:
            raise app.UsageError(f"--layers={FLAGS.layers!r}: 'auto' or integers like 4,5")
        if not layers or any(not 0 <= i < 16 for i in layers):
            raise app.UsageError(f"--layers={FLAGS.layers!r}: indices in 0..15")
        return layers, keep_label
    return None, keep_label


def main(argv):
    del argv
    layers, keep_label = _check_flags()

    import numpy as np

    from keras_sd_interp import editing
    from keras_sd_interp.scoring import judge_scorer
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports.editing import write_before_after
    from keras_sd_interp.reports.paths import safe_name

    pipe = load_pipeline("tiny")
    common = dict(num_steps=FLAGS.num_steps, guidance=FLAGS.guidance)
    if FLAGS.method == "diffquickfix":
        edit = editing.diffquickfix(pipe, FLAGS.concept, FLAGS.target, FLAGS.lam,
                                    positions=FLAGS.positions, keep=FLAGS.keep)
    else:
        found = None
        if layers is None:
            found = editing.locogen(pipe, judge_scorer(load_judge()), FLAGS.concept, FLAGS.target,
                                    FLAGS.window, seeds=range(FLAGS.num_seeds), **common)
            layers = found["best"]
            print(f"LocoGen: best window {layers}, target probability "
                  f"{found['best_target_prob']:.3f}")
        edit = editing.locoedit(pipe, [(FLAGS.concept, FLAGS.target)], layers, FLAGS.lam,
                                keep=FLAGS.keep, positions=FLAGS.positions)
        if found is not None:
            edit.info["locogen"] = found  # every window's score, written in the JSON
    other = "coat" if "coat" not in (FLAGS.concept, FLAGS.target) else "dress"
    prompts = [f"a {FLAGS.concept}", f"a {FLAGS.concept} and a {other}",
               f"a {other} and a {FLAGS.concept}", f"a {other}"]

    def draw():
        return np.stack([pipe.sampler.generate(
            prompts, num_steps=FLAGS.num_steps, seed=seed,
            unconditional_guidance_scale=FLAGS.guidance).uint8()
            for seed in range(FLAGS.num_seeds)], axis=1)

    before = draw()
    edit.apply(pipe)
    after = draw()
    edit.undo(pipe)
    name = safe_name(f"{FLAGS.method}_{FLAGS.concept}_to_{FLAGS.target}" +
                     (f"_keep_{keep_label}" if FLAGS.keep else ""))
    for key, path in write_before_after(edit, prompts, before, after, FLAGS.output_dir,
                                        name).items():
        print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
