"""Trains a top-k SAE (SAeUron's recipe) on U-Net activations collected while generating.

    python scripts/train_sae.py                      # tiny: 320 prompts x 25 steps, ~minutes
    python scripts/train_sae.py --num_prompts=40 --train_steps=200 --output=/tmp/sae.npz

Site: --site (default spatial_transformer_8 = SD 1.4's up_blocks.1.attentions.1). Every
spatial position of every kept step is a token. Checkpoints go to --checkpoint_dir; a second run
with the same directory resumes. Writes the weights (.npz) and a record (.json) beside them.
"""

import time

from absl import app
from absl import flags

flags.DEFINE_string("model", "tiny", "Pipeline (tiny only: the activations of sd14 do not fit "
                    "this machine's budget).")
flags.DEFINE_string("site", "spatial_transformer_8", "U-Net site whose output is encoded.")
flags.DEFINE_integer("num_prompts", 320, "Prompts generated (pairs and singles, seeded).")
flags.DEFINE_integer("num_steps", 25, "DDIM steps per generation.")
flags.DEFINE_integer("step_stride", 1, "Keep every n-th step's activations (1: all).")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("expansion", 16, "Latents per input channel (SAeUron: 16).")
flags.DEFINE_integer("k", 32, "Active latents per token (SAeUron: 32).")
flags.DEFINE_integer("train_steps", 3000, "Optimizer steps.")
flags.DEFINE_integer("batch_size", 1024, "Tokens per step.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("seed", 0, "Seed of prompts, noise and batches.")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoints (resume from the newest).")
flags.DEFINE_string("output", "runs/sae/tiny_st8.npz", "Weights (.npz); to ship: "
                    "--output=keras_sd_interp/assets/sae/tiny_st8.npz.")
FLAGS = flags.FLAGS


def check_flags():
    for name in ("num_prompts", "num_steps", "step_stride", "expansion", "k", "train_steps",
                 "batch_size"):
        if getattr(FLAGS, name) <= 0:
            raise app.UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1")
    if FLAGS.model != "tiny":
        raise app.UsageError(f"--model={FLAGS.model!r}: only 'tiny' is supported")
    if not FLAGS.output.endswith(".npz"):
        raise app.UsageError(f"--output={FLAGS.output!r} must end in .npz")
    if FLAGS.learning_rate <= 0:
        raise app.UsageError(f"--learning_rate={FLAGS.learning_rate} must be > 0")


def main(argv):
    del argv
    check_flags()
    from keras_sd_interp import lens
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.sae import SparseAutoencoder, as_tokens, collect
    from keras_sd_interp.sae.collect import training_prompts
    from keras_sd_interp.training.sae import evaluate_sae, save_sae, train_sae

    pipe = load_pipeline(FLAGS.model)
    if FLAGS.site not in lens.list_sites(pipe):
        raise app.UsageError(f"--site={FLAGS.site!r} is not a site of {FLAGS.model}; see "
                             "lens.list_sites(pipe)")
    began = time.time()
    prompts, _, _ = training_prompts(FLAGS.num_prompts, FLAGS.seed)
    steps = list(range(0, FLAGS.num_steps, FLAGS.step_stride))
    data = collect(pipe, prompts, FLAGS.site, FLAGS.num_steps, steps, FLAGS.guidance, FLAGS.seed)
    tokens = as_tokens(data["activations"])
    collected = time.time() - began
    print(f"{len(tokens)} tokens of width {tokens.shape[1]} in {collected:.0f} s")
    sae = SparseAutoencoder(tokens.shape[1], FLAGS.expansion, FLAGS.k, seed=FLAGS.seed)
    history = train_sae(sae, tokens, FLAGS.train_steps, FLAGS.batch_size, FLAGS.learning_rate,
                        FLAGS.seed, checkpoint_dir=FLAGS.checkpoint_dir)
    metrics = evaluate_sae(sae, tokens)
    record = {"site": FLAGS.site, "diffusers_name": "up_blocks.1.attentions.1"
              if FLAGS.site == "spatial_transformer_8" else None, "model": FLAGS.model,
              "num_prompts": FLAGS.num_prompts, "num_steps": FLAGS.num_steps, "steps": steps,
              "guidance": FLAGS.guidance, "seed": FLAGS.seed, "config": sae.config(),
              "train_steps": FLAGS.train_steps, "batch_size": FLAGS.batch_size,
              "learning_rate": FLAGS.learning_rate, "num_tokens": int(len(tokens)),
              "collect_seconds": round(collected, 1),
              "total_seconds": round(time.time() - began, 1),
              "train_metrics": metrics, "history": history,
              "command": "python scripts/train_sae.py " + " ".join(
                  f"--{n}={getattr(FLAGS, n)}" for n in ("num_prompts", "num_steps",
                                                          "step_stride", "train_steps", "seed"))}
    save_sae(FLAGS.output, sae, record)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    app.run(main)
