"""The U-Net atlas: sharded, resumable sweeps, then static HTML (a page per unit).

    python scripts/build_atlas.py --layers=9 --units=0-7 --out_dir=figures/atlas   # a part
    python scripts/build_atlas.py                       # the whole tiny atlas (all 52 convs)
    python scripts/build_atlas.py --engine=ray --workers=2          # the same files, on Ray
    python scripts/build_atlas.py --model=sd14 --weights_dir=/data --img_height=256 \
        --img_width=256 --layers=9 --units=0-31 --engine=ray --address=auto

--layers are conv indices (0..51, see scripts/inspect_unet.py); --units filter indices within
them; --sae_units the bundled SAE's latents (tiny), each with its timestep-aware visualization
and amplify / ablate preview (--sae_jobs). Rerunning the same command resumes: finished shards in --run_dir are skipped, broken ones
redone, and other settings refused, naming the flag. Open --out_dir/index.html.
"""

from absl import app, flags, logging

from keras_sd_interp import cli
from keras_sd_interp.cli import define_model_flags, parse_numbers
from keras_sd_interp.lens.taps import NUM_CONVS

define_model_flags()
flags.DEFINE_list("layers", [], "Conv indices 0..51 to build (default: all).")
flags.DEFINE_list("units", [], "Filter indices within each conv, e.g. 0-7 (default: all).")
flags.DEFINE_list("sae_units", [], "SAE latents to build, e.g. 0-15 (default: all; 'none').")
flags.DEFINE_list("viz", ["corrected_descent", "corrected_ascent", "paper_descent"],
                  "Visualizations: mode_direction, mode corrected or paper.")
flags.DEFINE_integer("steps", 50, "Corrected-mode descent steps.")
flags.DEFINE_integer("paper_steps", 300, "Paper-mode steps (the course: 300).")
flags.DEFINE_integer("num_prompts", 64, "Prompts of the activity sweep.")
flags.DEFINE_integer("num_steps", 10, "Denoising steps per generated prompt.")
flags.DEFINE_integer("shard_size", 128, "Filters per visualization shard (one batch; 128 "
                     "runs 1.2-1.5x more filter-steps/s than 32 on the tiny U-Net).")
flags.DEFINE_integer("prompt_shard_size", 8, "Prompts per activity shard (one batch).")
flags.DEFINE_integer("top_examples", 4, "Top examples per unit.")
flags.DEFINE_list("sae_jobs", ["viz", "edit"], "SAE latent sweeps: viz (timestep-aware feature "
                  "visualization), edit (amplify / ablate preview); 'none' for neither.")
flags.DEFINE_integer("sae_viz_steps", 150, "Optimization steps of an SAE latent's visualization.")
flags.DEFINE_float("sae_amplify", 4.0, "The preview's amplified latent: its code times this.")
flags.DEFINE_integer("sae_profile_prompts", 16, "Prompts traced to find each latent's peak "
                     "timestep and the prompt it fires most on.")
flags.DEFINE_integer("sae_shard_size", 96, "SAE latents per shard (one batch; 96 runs 1.5x "
                     "more latents/s than 32 on the tiny U-Net; 1,536 = 16 x 96).")
cli.define_engine_flags()
flags.DEFINE_string("run_dir", None, "Shard files (default: runs/atlas_<model>).")
flags.DEFINE_string("out_dir", None, "The HTML atlas (default: outputs/atlas_<model>).")
cli.check_index_list("layers", NUM_CONVS - 1)
cli.check_index_list("units")
for _name in ("steps", "paper_steps", "num_prompts", "num_steps", "shard_size",
              "prompt_shard_size", "top_examples", "sae_viz_steps",
              "sae_profile_prompts", "sae_shard_size"):
    cli.check_int(_name, minimum=1)
flags.register_validator("viz", lambda values: all(
    v in ("corrected_descent", "corrected_ascent", "paper_descent", "paper_ascent")
    for v in values), "--viz: each of corrected_descent, corrected_ascent, paper_descent, "
    "paper_ascent")
flags.register_validator("sae_jobs", lambda values: values == ["none"] or all(
    v in ("viz", "edit") for v in values), "--sae_jobs: viz and/or edit, or none")
flags.register_validator("sae_units", lambda values: values == ["none"] or all(
    v.replace("-", "").isdigit() for v in values), "--sae_units: indices like 0-15, or none")
cli.check_out_dir("run_dir")
cli.check_out_dir("out_dir")
FLAGS = flags.FLAGS


def _sae_units(values):
    """--sae_units as a list (None: all; []: none)."""
    return None if not values else [] if values == ["none"] else parse_numbers(values)


def _check_units(values):
    """--units against every chosen conv's filters and --sae_units against the SAE's latents,
    from the preset's widths and the SAE file (no model is built)."""
    from keras_sd_interp.lens.taps import conv_filter_count

    try:
        units = parse_numbers(values["units"])
        sae_units = _sae_units(values["sae_units"])
    except ValueError as error:
        raise flags.ValidationError(str(error)) from None
    convs = parse_numbers(values["layers"]) or range(NUM_CONVS)
    if units:
        count, conv = min((conv_filter_count(values["model"], c), c) for c in convs)
        if max(units) >= count:
            raise flags.ValidationError(
                f"--units={','.join(values['units'])}: conv {conv} has filters 0..{count - 1} "
                f"(--model={values['model']}); give units every chosen conv has")
    if sae_units:
        if values["model"] != "tiny":
            raise flags.ValidationError(f"--sae_units: the --model={values['model']} atlas has "
                                        "no SAE (the bundled one is tiny's); give --sae_units=none")
        from keras_sd_interp.sae import load_sae
        from keras_sd_interp.sweeps.jobs.activity import BUNDLED_SAE

        size = load_sae(BUNDLED_SAE).num_latents
        if max(sae_units) >= size:
            raise flags.ValidationError(f"--sae_units: {max(sae_units)} is out of range: the "
                                        f"SAE has {size} latents (0..{size - 1})")
    return True


flags.register_multi_flags_validator(["units", "sae_units", "layers", "model"], _check_units)


def jobs_from_flags():
    from keras_sd_interp.sweeps.jobs.activity import ActivityJob
    from keras_sd_interp.sweeps.jobs.filters import FilterVizJob

    convs = tuple(parse_numbers(FLAGS.layers)) or None
    model = dict(model=FLAGS.model, img_height=FLAGS.img_height, img_width=FLAGS.img_width,
                 weights_dir=FLAGS.weights_dir, random_weights=FLAGS.random_weights)
    viz = []
    for name in FLAGS.viz:
        mode, direction = name.split("_")
        steps = FLAGS.paper_steps if mode == "paper" else FLAGS.steps
        viz.append(FilterVizJob(mode=mode, direction=direction, steps=steps, convs=convs,
                                batch_size=FLAGS.shard_size, **model))
    activity = ActivityJob(num_prompts=FLAGS.num_prompts, num_steps=FLAGS.num_steps,
                           sae_path=None if FLAGS.sae_units != ["none"] else "", **model)
    return viz, activity, sae_jobs_from_flags(model)


def sae_jobs_from_flags(model):
    """The SAE latent sweeps of --sae_jobs (none with --sae_units=none)."""
    from keras_sd_interp.sweeps.jobs.sae_latents import SaeEditJob, SaeVizJob

    if FLAGS.sae_units == ["none"] or FLAGS.sae_jobs == ["none"] or model["model"] != "tiny":
        return []   # only tiny has a bundled SAE (the activity job records none on sd14)
    common = dict(profile_prompts=FLAGS.sae_profile_prompts, num_steps=FLAGS.num_steps,
                  batch_size=FLAGS.sae_shard_size, **model)
    jobs = {"viz": SaeVizJob(steps=FLAGS.sae_viz_steps, **common),
            "edit": SaeEditJob(amplify=FLAGS.sae_amplify, **common)}
    return [jobs[name] for name in FLAGS.sae_jobs]


def main(_):
    from keras_sd_interp.experiments.atlas import build_atlas, run_atlas_sweeps
    from keras_sd_interp.models.paper import paper_unet
    from keras_sd_interp.reports.atlas import AtlasFiles
    from keras_sd_interp.reports.shards import SweepFiles

    viz_jobs, activity_job, sae_jobs = jobs_from_flags()
    units = parse_numbers(FLAGS.units) or None
    sae_units = _sae_units(FLAGS.sae_units)
    sweep_files = SweepFiles(FLAGS.run_dir or f"runs/atlas_{FLAGS.model}")
    out_dir = FLAGS.out_dir or f"outputs/atlas_{FLAGS.model}"
    cli.require_out_dir(out_dir)  # the defaults (the flags are checked while parsed)
    reports = run_atlas_sweeps(viz_jobs, activity_job, sweep_files, FLAGS.prompt_shard_size,
                               units, sae_jobs=sae_jobs, sae_units=sae_units,
                               engine=FLAGS.engine, workers=FLAGS.workers,
                               address=FLAGS.address)
    for name, report in reports.items():
        logging.info("%s: %d shards written, %d skipped, %.2f units/s", name,
                     len(report.written), len(report.skipped), report.units_per_second)
    if viz_jobs:  # the U-Net the visualizations were made with, already built in-process
        unet = viz_jobs[0].models()[0]
    else:
        unet = paper_unet(FLAGS.model, FLAGS.img_height, FLAGS.img_width, FLAGS.weights_dir,
                          FLAGS.random_weights)
    convs = parse_numbers(FLAGS.layers) or list(range(NUM_CONVS))
    count = build_atlas(unet, sweep_files, viz_jobs, activity_job, AtlasFiles(out_dir), convs,
                        units, sae_units, FLAGS.top_examples,
                        prompt_shard_size=FLAGS.prompt_shard_size, sae_jobs=sae_jobs)
    logging.info("wrote %d unit pages to %s/index.html", count, out_dir)


if __name__ == "__main__":
    app.run(main)
