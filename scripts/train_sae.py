"""Trains a top-k SAE (SAeUron's recipe) on U-Net activations streamed to shards on disk.

    python scripts/train_sae.py                      # tiny: 320 prompts x 25 steps
    python scripts/train_sae.py --num_prompts=40 --train_steps=200 --run_dir=/tmp/sae_run \
        --output=/tmp/sae.npz
    python scripts/train_sae.py --model=sd14 --weights_dir=DIR --prompts_file=prompts.txt \
        --step_stride=5 --positions=64 --max_gb=20 --expansion=16 --k=32
    python scripts/train_sae.py --model=sd14 --weights_dir=DIR --prompts_file=prompts.txt \
        --engine=ray --address=auto --collect_batch=8     # the collection on a Ray cluster

Site: --site (default spatial_transformer_8 = SD 1.4's up_blocks.1.attentions.1; at 512 px
16 x 16 positions x 1280 channels per image and step). Collection writes one shard per
--collect_batch prompts into --run_dir/activations (atomically; --max_gb refuses a run whose
estimate is larger, before any model is built), training reads them with tf.data and
checkpoints into --run_dir/checkpoints. --engine=ray collects on Ray instead (the sweep runner's
SaeCollectJob: one pipeline per worker, shards as tasks with retries, same arrays; --address for
a cluster). Rerunning with the same --run_dir resumes both; the run
records its settings and refuses other ones, naming the flag (--train_steps may grow). A NaN or
inf activation or loss stops the run naming the step, and nothing is written to --output.
Writes the weights (.npz) and a record (.json) beside them.
"""

import os
import time

from absl import app
from absl import flags

from keras_sd_interp import cli

cli.define_model_flags(mini=True)
cli.define_engine_flags("Ray workers collecting (one pipeline each).")
flags.DEFINE_string("site", "spatial_transformer_8", "U-Net site whose output is encoded.")
flags.DEFINE_integer("num_prompts", 320, "tiny: prompts generated (pairs and singles, seeded).")
flags.DEFINE_list("prompts", ["a photo of a cat", "a photo of a dog", "a painting of a house",
                              "a photo of a bottle in a room", "a car on a street",
                              "a bowl of fruit", "a portrait of a woman", "a tree in a field"],
                  "sd14: prompts (with --prompts_file: ignored).")
flags.DEFINE_string("prompts_file", None, "sd14: a text file, one prompt per line.")
flags.DEFINE_integer("num_steps", 25, "DDIM steps per generation.")
flags.DEFINE_integer("step_stride", 1, "Keep every n-th step's activations (1: all).")
flags.DEFINE_integer("positions", None, "Positions kept per image and step, drawn at random "
                     "(default: all).")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("collect_batch", 32, "Prompts per generation and per shard.")
flags.DEFINE_enum("dtype", "float32", ["float32", "float16"], "Activations on disk.")
flags.DEFINE_float("max_gb", 10.0, "Refuse a collection estimated above this many GB.")
flags.DEFINE_integer("expansion", 16, "Latents per input channel (SAeUron: 16).")
flags.DEFINE_integer("k", 32, "Active latents per token (SAeUron: 32).")
flags.DEFINE_integer("train_steps", 3000, "Optimizer steps (may grow when resuming).")
flags.DEFINE_integer("batch_size", 1024, "Tokens per step.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("shuffle_buffer", 65536, "Tokens in tf.data's shuffle buffer.")
flags.DEFINE_integer("seed", 0, "Seed of prompts, noise, positions and batches.")
flags.DEFINE_string("run_dir", None, "Shards, checkpoints and settings (resumed when it exists; "
                    "default: --output without .npz, plus _run).")
flags.DEFINE_string("output", None, "Weights (.npz; default runs/sae/<model>_<site>.npz); to "
                    "ship: --output=keras_sd_interp/assets/sae/tiny_st8.npz.")
FLAGS = flags.FLAGS
for _name in ("num_prompts", "num_steps", "step_stride", "collect_batch", "expansion", "k",
              "train_steps", "batch_size", "shuffle_buffer"):
    cli.check_int(_name, 1)
cli.check_int("positions", 1, allow_none=True)
cli.check_int("seed", 0)
cli.check_float("learning_rate", 0, exclusive_minimum=True)
cli.check_float("guidance")
cli.check_float("max_gb", 0, exclusive_minimum=True)
cli.check_out_file("output")
cli.check_out_dir("run_dir")
flags.register_validator("output", lambda v: v is None or v.endswith(".npz"),
                         "must end in .npz")
flags.register_validator("prompts_file", lambda v: v is None or os.path.isfile(v),
                         "must be an existing text file, one prompt per line")


def _check_site(values):
    problem = cli.unet_site_problem(values["site"], values["model"])
    if problem:
        raise flags.ValidationError(problem)
    return True


flags.register_multi_flags_validator(["site", "model"], _check_site)


def check_prompt_flags():
    """The prompt flags of the other --model refused (they would be ignored): tiny generates
    its --num_prompts prompts; sd14 reads --prompts_file or --prompts, each prompt checked."""
    ignored = ("prompts", "prompts_file") if FLAGS.model == "tiny" else ("num_prompts",)
    given = [f"--{name}" for name in ignored if FLAGS[name].present]
    if given:
        raise app.UsageError(f"{', '.join(given)}: not read with --model={FLAGS.model} (tiny "
                             "generates --num_prompts prompts; sd14 reads --prompts_file or "
                             "--prompts)")
    if FLAGS.model != "tiny" and not FLAGS.prompts_file:
        if not FLAGS.prompts:
            raise app.UsageError("--prompts is empty: give prompts (or --prompts_file)")
        for prompt in FLAGS.prompts:
            problem = cli.prompt_problem(FLAGS.model, prompt)
            if problem:
                raise app.UsageError(f"--prompts: {problem}")


def output_paths():
    """(output .npz, run folder) from the flags."""
    short = FLAGS.site.replace("spatial_transformer_", "st")
    output = FLAGS.output or f"runs/sae/{FLAGS.model}_{short}.npz"
    return output, FLAGS.run_dir or output[:-4] + "_run"


def read_prompts():
    """tiny: the seeded training prompts; sd14: --prompts_file or --prompts."""
    if FLAGS.model == "tiny":
        from keras_sd_interp.sae.collect import training_prompts

        return training_prompts(FLAGS.num_prompts, FLAGS.seed)[0]
    if FLAGS.prompts_file:
        with open(FLAGS.prompts_file) as handle:
            prompts = [line.strip() for line in handle if line.strip()]
        if not prompts:
            raise app.UsageError(f"--prompts_file={FLAGS.prompts_file}: no prompt in it")
        for number, prompt in enumerate(prompts, 1):
            problem = cli.prompt_problem(FLAGS.model, prompt)
            if problem:
                raise app.UsageError(f"--prompts_file={FLAGS.prompts_file}, line {number}: "
                                     f"{problem}")
        return prompts
    return list(FLAGS.prompts)


def run_settings(plan, prompts):
    """Everything that shapes the result; a resumed run must match (train_steps may grow)."""
    import hashlib

    names = ("model", "model_size", "weights_dir", "random_weights", "img_height", "img_width",
             "site", "num_prompts", "prompts_file", "num_steps", "step_stride", "positions",
             "guidance", "collect_batch", "dtype", "expansion", "k", "batch_size", "learning_rate",
             "shuffle_buffer", "seed")
    settings = {name: getattr(FLAGS, name) for name in names}
    settings["prompts"] = hashlib.sha256("\n".join(prompts).encode()).hexdigest()[:16]
    return settings


def check_size(plan, num_prompts):
    """--max_gb against the estimate, from the model's config (before any model is built)."""
    from keras_sd_interp.models import DEFAULT_SIZES
    from keras_sd_interp.models.config import sized_config
    from keras_sd_interp.training.sae_shards import check_budget, transformer_site_shape

    height, width, _ = DEFAULT_SIZES[FLAGS.model]
    shape = transformer_site_shape(sized_config(FLAGS.model, FLAGS.model_size),
                                   FLAGS.img_height or height,
                                   FLAGS.img_width or width, FLAGS.site)
    if shape is not None:
        try:
            check_budget(plan.estimate_bytes(num_prompts, shape[:2], shape[2]),
                         FLAGS.max_gb * 1e9)
        except ValueError as error:
            raise app.UsageError(str(error)) from error
        check_sae_shape(shape)


def check_sae_shape(shape):
    """--k against the SAE's latents and --positions against the site's, from its (h, w, C)."""
    latents = shape[2] * FLAGS.expansion
    if FLAGS.k > latents:
        raise app.UsageError(f"--k={FLAGS.k}: the SAE has {latents} latents ({FLAGS.site}'s "
                             f"{shape[2]} channels x --expansion={FLAGS.expansion}); give "
                             f"--k in 1..{latents}")
    if FLAGS.positions is not None and FLAGS.positions > shape[0] * shape[1]:
        raise app.UsageError(f"--positions={FLAGS.positions}: {FLAGS.site} has "
                             f"{shape[0] * shape[1]} positions per image ({shape[0]} x "
                             f"{shape[1]}); give at most that, or leave it out for all")


def check_layout(shard_dir):
    """A run's shards are resumed only by the engine that collected them."""
    from keras_sd_interp.training.sae_shards import engine_problem

    problem = engine_problem(shard_dir, FLAGS.engine)
    if problem:
        raise app.UsageError(problem)


def collect(plan, prompts, shard_dir):
    """The activation shards of `prompts` in `shard_dir` (made where missing); returns their
    paths. In process with this script's pipeline, or on Ray through the sweep runner."""
    from keras_sd_interp.training.sae_shards import collect_shards, shard_files

    if FLAGS.engine == "inprocess":
        from keras_sd_interp import lens

        pipe = cli.pipeline_from_flags(FLAGS)
        if FLAGS.site not in lens.list_sites(pipe):
            raise app.UsageError(f"--site={FLAGS.site!r} is not a site of {FLAGS.model}; see "
                                 "lens.list_sites(pipe)")
        return collect_shards(pipe, prompts, shard_dir, plan, FLAGS.max_gb * 1e9)
    from keras_sd_interp.reports.shards import job_store
    from keras_sd_interp.sweeps import run_sweep
    from keras_sd_interp.sweeps.jobs.sae_collect import SaeCollectJob

    job = SaeCollectJob(prompts=tuple(prompts), plan=plan, model=FLAGS.model,
                        img_height=FLAGS.img_height, img_width=FLAGS.img_width,
                        weights_dir=FLAGS.weights_dir, random_weights=FLAGS.random_weights,
                        size=cli.model_size(FLAGS))
    run_sweep(job, job.shards(), job_store(shard_dir, job), engine="ray",
              workers=FLAGS.workers, address=FLAGS.address)
    return shard_files(shard_dir)


def main(argv):
    del argv
    from keras_sd_interp.training.run_settings import check_run_settings
    from keras_sd_interp.training.sae_shards import ShardPlan

    output, run_dir = output_paths()
    check_prompt_flags()
    prompts = read_prompts()
    steps = tuple(range(0, FLAGS.num_steps, FLAGS.step_stride))
    plan = ShardPlan(FLAGS.site, FLAGS.num_steps, steps, FLAGS.guidance, FLAGS.positions,
                     FLAGS.collect_batch, FLAGS.seed, FLAGS.dtype)
    check_size(plan, len(prompts))
    check_layout(os.path.join(run_dir, "activations"))
    try:
        check_run_settings(run_dir, run_settings(plan, prompts))
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    try:
        train(plan, prompts, output, run_dir)
    except FloatingPointError as error:   # NaN / inf: stop, name the step, write nothing
        raise SystemExit(f"train_sae.py: {error}") from error


def train(plan, prompts, output, run_dir):
    from keras_sd_interp.sae import DIFFUSERS_NAME, SparseAutoencoder
    from keras_sd_interp.training.sae import evaluate_sae, save_sae, train_sae_on_shards
    from keras_sd_interp.training.sae_shards import sample_tokens

    began = time.time()
    shard_dir = os.path.join(run_dir, "activations")
    shards = collect(plan, prompts, shard_dir)
    collected = time.time() - began
    sample = sample_tokens(shard_dir, 20000, FLAGS.seed)
    print(f"{len(shards)} shards in {shard_dir} ({collected:.0f} s); tokens of width "
          f"{sample.shape[1]}")
    sae = SparseAutoencoder(sample.shape[1], FLAGS.expansion, FLAGS.k, seed=FLAGS.seed)
    history = train_sae_on_shards(sae, shard_dir, FLAGS.train_steps, FLAGS.batch_size,
                                  FLAGS.learning_rate, FLAGS.seed,
                                  checkpoint_dir=os.path.join(run_dir, "checkpoints"),
                                  shuffle_buffer=FLAGS.shuffle_buffer)
    metrics = evaluate_sae(sae, sample)
    record = {"site": FLAGS.site, "diffusers_name": DIFFUSERS_NAME
              if FLAGS.site == "spatial_transformer_8" else None, "model": FLAGS.model,
              "settings": run_settings(plan, prompts), "steps": list(plan.kept_steps()),
              "config": sae.config(), "train_steps": FLAGS.train_steps, "run_dir": run_dir,
              "num_shards": len(shards), "engine": FLAGS.engine,
              "collect_seconds": round(collected, 1),
              "total_seconds": round(time.time() - began, 1),
              "train_metrics_on_20k_sample": metrics, "history": history,
              "command": "python scripts/train_sae.py " + " ".join(
                  f"--{n}={getattr(FLAGS, n)}" for n in ("model", "num_prompts", "num_steps",
                                                          "step_stride", "train_steps", "seed"))}
    save_sae(output, sae, record)
    print(f"wrote {output}:", {k: round(v, 4) if isinstance(v, float) else v
                               for k, v in metrics.items()})


if __name__ == "__main__":
    app.run(main)
