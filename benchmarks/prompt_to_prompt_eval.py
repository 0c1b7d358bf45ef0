"""Prompt-to-prompt on tiny, measured with the judge: replace the right item of "a X and a Y"
(with and without local blend, against plain generation of the edited prompt from the same
noise), reweight of one word, and the cost of k edits in one run.

    python benchmarks/prompt_to_prompt_eval.py --num_sources=10 --num_edits=3 --num_seeds=4
"""

import os

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.models import bundled

NUMBERS = {  # flag: (default, help)
    "num_sources": (10, "Source pairs 'a X and a Y' (drawn with seed 0)."),
    "num_edits": (3, "Edited prompts per source (Y replaced by Z)."),
    "num_seeds": (4, "Noise seeds per prompt."),
    "first_seed": (9000, "First seed (unseen: training and eval_tiny use 0..)."),
    "num_steps": (25, "DDIM steps."),
    "guidance": (5.0, "Guidance scale."),
    "cross_replace_steps": (0.8, "Replace: cross-attention window (0..f)."),
    "self_replace_steps": (0.4, "Replace: self-attention window (0..f)."),
}
for flag_name, (default, text) in NUMBERS.items():
    define = flags.DEFINE_integer if isinstance(default, int) else flags.DEFINE_float
    define(flag_name, default, text)
flags.DEFINE_list("reweight_values", ["0", "0.5", "1", "2", "4", "8"], "Equalizer values.")
flags.DEFINE_string("reweight_word", "boot", "The right item of the reweight sources.")
flags.DEFINE_list("cost_edits", ["3", "8"], "k for the cost measurement.")
flags.DEFINE_multi_enum("parts", ["replace", "reweight", "cost"], ["replace", "reweight", "cost"],
                        "What to measure.")
flags.DEFINE_string("output_dir", "figures/prompt_to_prompt", "Where to write.")
flags.DEFINE_string("bundle_dir", bundled.ASSETS_DIR, "The tiny bundle to measure (default: "
                    "the shipped one; e.g. candidates/tiny_clip_unet).")
FLAGS = flags.FLAGS
for name in ("num_sources", "num_edits", "num_seeds", "num_steps"):
    cli.check_int(name, 1)
cli.check_int("num_edits", 1, 9)
cli.check_float("cross_replace_steps", 0, 1)
cli.check_float("self_replace_steps", 0, 1)
cli.check_out_dir("output_dir")
flags.register_validator("bundle_dir", bundled.bundle_dir_checker())


def main(argv):
    del argv
    import numpy as np

    from keras_sd_interp.editing import prompt_to_prompt as p2p
    from keras_sd_interp.editing.prompt_to_prompt import evaluate
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports import prompt_to_prompt as report

    pipe, judge = load_pipeline("tiny", bundle_dir=FLAGS.bundle_dir), load_judge()
    seeds = list(range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.num_seeds))
    controller = p2p.Replace(FLAGS.cross_replace_steps, FLAGS.self_replace_steps)
    cases = evaluate.replace_cases(FLAGS.num_sources, FLAGS.num_edits)
    replace = curve = costs = None
    if "replace" in FLAGS.parts:
        replace, first = evaluate.replace_eval(pipe, judge, cases, seeds, controller,
                                               FLAGS.num_steps, FLAGS.guidance)
        print("replace:", replace)
        write_replace_grid(report, first, len(seeds))
    if "reweight" in FLAGS.parts:
        curve = measure_reweight(pipe, judge, seeds, evaluate, report)
    if "cost" in FLAGS.parts:
        costs = [evaluate.cost(pipe, controller, int(k), FLAGS.num_steps, FLAGS.guidance)
                 for k in FLAGS.cost_edits]
        print("cost:", costs)
    settings = {k: FLAGS[k].value for k in ("num_sources", "num_edits", "num_seeds", "first_seed",
                                            "num_steps", "guidance", "cross_replace_steps",
                                            "self_replace_steps", "bundle_dir", "parts")}
    print("wrote", report.write_numbers(FLAGS.output_dir, {
        "settings": settings, "cases": cases, "replace": replace, "reweight": curve,
        "cost": costs}))


def write_replace_grid(report, first, num_seeds):
    """Source + each condition's edits, a row per seed."""
    import numpy as np

    conditions = ["p2p", "p2p_blend", "p2p_blend_minmax", "p2p_blend_carrier", "plain"]
    rows = np.stack([np.concatenate([first["source"][None, s]] +
                                    [first[c][:, s] for c in conditions]) for s in
                     range(num_seeds)])
    titles = [first["prompts"][0]] + [f"{c}: {p}" for c in conditions for p in first["prompts"][1:]]
    report.write_edit_grid(os.path.join(FLAGS.output_dir, "replace_grid.png"), rows, titles)


def measure_reweight(pipe, judge, seeds, evaluate, report):
    """The reweight curve of --reweight_word and its figures."""
    import numpy as np

    word = FLAGS.reweight_word
    sources = [evaluate.pair_prompt(x, word) for x in ("trouser", "t-shirt", "dress", "bag")]
    values = [float(v) for v in FLAGS.reweight_values]
    curve, images = evaluate.reweight_eval(pipe, judge, sources, word, values, seeds,
                                           FLAGS.num_steps, FLAGS.guidance)
    print("reweight:", curve)
    report.write_reweight(os.path.join(FLAGS.output_dir, "reweight_curve.png"), curve, word)
    report.write_edit_grid(os.path.join(FLAGS.output_dir, "reweight_grid.png"),
                           np.swapaxes(images, 0, 1), [f"{word} x{v:g}" for v in values])
    return curve


if __name__ == "__main__":
    app.run(main)
