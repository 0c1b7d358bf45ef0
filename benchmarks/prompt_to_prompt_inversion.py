"""Null-text inversion of real Fashion-MNIST test compositions on tiny, against plain DDIM
inversion: reconstruction PSNR, and replace edits of the right item judged by the judge.

    python benchmarks/prompt_to_prompt_inversion.py --num_images=50 --num_steps=25
"""

import os
import time

from absl import app
from absl import flags

from keras_sd_interp import cli

flags.DEFINE_integer("num_images", 50, "Real test compositions 0..n-1 (items 2k, 2k+1).")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Guidance of the generations (null-text optimises for it).")
flags.DEFINE_integer("num_inner_steps", 10, "Null-text: Adam updates per step at most.")
flags.DEFINE_float("cross_replace_steps", 0.8, "Replace: cross-attention window (0..f).")
flags.DEFINE_float("self_replace_steps", 0.4, "Replace: self-attention window (0..f).")
flags.DEFINE_string("output_dir", "figures/prompt_to_prompt", "Where to write.")
FLAGS = flags.FLAGS
cli.check_int("num_images", 1, 5000)
cli.check_int("num_steps", 1, 1000)
cli.check_int("num_inner_steps", 0)
for window in ("cross_replace_steps", "self_replace_steps"):
    cli.check_float(window, 0, 1)
cli.check_out_dir("output_dir")


def main(argv):
    del argv
    import numpy as np

    from keras_sd_interp.data import compositions, load_fashion_mnist
    from keras_sd_interp.editing import prompt_to_prompt as p2p
    from keras_sd_interp.editing.prompt_to_prompt import evaluate
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports import prompt_to_prompt as report

    judge, pipe = load_judge(), load_pipeline("tiny")
    items, item_labels = load_fashion_mnist("test")
    real, captions, labels = compositions.indexed_pairs(items, item_labels,
                                                        np.arange(FLAGS.num_images))
    start = time.perf_counter()
    plain = p2p.ddim_inversion(pipe, real, captions, FLAGS.num_steps, progress=True)
    null_text = p2p.null_text_inversion(plain, pipe, FLAGS.guidance, FLAGS.num_inner_steps,
                                        progress=True)
    seconds = time.perf_counter() - start
    psnr = evaluate.inversion_psnr(pipe, plain, null_text, FLAGS.guidance)
    psnr_summary = {k: {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
                    for k, v in psnr.items()}
    print("psnr:", psnr_summary)
    ddim = p2p.Inversion(plain.images, plain.latents, plain.prompts, plain.num_steps,
                         FLAGS.guidance)
    controller = p2p.Replace(FLAGS.cross_replace_steps, FLAGS.self_replace_steps)
    edits, kept_real, first, targets = evaluate.inverted_replace_eval(
        pipe, judge, {"null_text": null_text, "ddim": ddim}, labels, controller)
    print("replace:", edits, "left kept as the real label:", kept_real)
    shown = min(4, FLAGS.num_images)
    recon = {"null_text": null_text.reconstruct(pipe).images[:shown],
             "ddim": ddim.reconstruct(pipe).images[:shown]}
    rows = np.stack([plain.images[:shown], recon["ddim"], recon["null_text"]], 1)
    report.write_edit_grid(os.path.join(FLAGS.output_dir, "inversion_grid.png"), rows,
                           ["real", "DDIM inversion", "null-text inversion"])
    edit_rows = np.stack([np.concatenate([plain.images[:1], first[name][0], first[name][1]])
                          for name in ("ddim", "null_text")])
    edit = evaluate.pair_prompt(compositions.CLASS_NAMES[labels[0][0]], targets[0])
    report.write_edit_grid(os.path.join(FLAGS.output_dir, "inversion_edit_grid.png"), edit_rows,
                           [f"real: {captions[0]}", "DDIM reconstruction", f"DDIM: {edit}",
                            "real", "null-text reconstruction", f"null-text: {edit}"])
    settings = {k: FLAGS[k].value for k in ("num_images", "num_steps", "guidance",
                                            "num_inner_steps", "cross_replace_steps",
                                            "self_replace_steps")}
    print("wrote", report.write_numbers(FLAGS.output_dir, {
        "settings": settings, "psnr": psnr_summary, "replace": edits,
        "left_kept_as_real_label": kept_real, "inversion_seconds": seconds,
        "inner_steps_mean": float(null_text.inner_steps.mean()), "targets": targets},
        name="prompt_to_prompt_inversion.json"))


if __name__ == "__main__":
    app.run(main)
