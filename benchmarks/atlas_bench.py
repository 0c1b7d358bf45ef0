"""Where the filter-visualization sweep's time goes, and what the atlas jobs cost per unit.

    python benchmarks/atlas_bench.py --part=trace        # tap_all vs a truncated model per conv
    python benchmarks/atlas_bench.py --part=engines      # Ray vs in-process, 1 and 2 workers
    python benchmarks/atlas_bench.py --part=engines_probe  # the same with a model-free job
    python benchmarks/atlas_bench.py --part=sd14         # cost per filter, SD v1.4 random, 256px
    python benchmarks/atlas_bench.py --part=sae          # SAE viz / preview / collection jobs
    python benchmarks/atlas_bench.py --part=batch --convs=3,9,30,50 --batch_sizes=32,64,96,128
                                                         # filter-steps/s against the batch

Prints one JSON line per measurement. The machine is shared (2 cores, other jobs running), so
absolute numbers are noisy; ratios measured back to back are the meaningful part.
"""

import json
import tempfile
import time

from absl import app, flags

from keras_sd_interp.reports.shards import SweepFiles
from keras_sd_interp.sweeps import run_sweep, unit_shards
from keras_sd_interp.sweeps.jobs.filters import FilterVizJob
from keras_sd_interp.sweeps.jobs.probe import ProbeJob

flags.DEFINE_enum("part", "trace", ["trace", "engines", "engines_probe", "sd14", "sae", "batch"],
                  "What to measure.")
flags.DEFINE_integer("sae_viz_steps", 150, "--part=sae: visualization steps per latent.")
flags.DEFINE_integer("sae_shards", 2, "--part=sae: shards timed per job (the first traces).")
flags.DEFINE_list("sae_shard_sizes", [], "--part=sae: several shard sizes, measured one after "
                  "another in this run (default: --shard_size).")
flags.DEFINE_list("sae_job_names", ["sae_viz", "sae_edit", "sae_acts"], "--part=sae: which jobs.")
flags.DEFINE_integer("probe_work", 400, "--part=engines_probe: matrix products per unit.")
flags.DEFINE_list("convs", ["3", "30", "50"], "Convs for --part=trace/engines.")
flags.DEFINE_integer("steps", 5, "Descent steps per shard.")
flags.DEFINE_integer("shard_size", 32, "Filters per shard.")
flags.DEFINE_list("batch_sizes", ["32", "64", "96", "128"], "--part=batch: batches per conv "
                  "(filters repeat where the conv has fewer).")
flags.DEFINE_integer("shards_per_conv", 1, "Shards per conv.")
FLAGS = flags.FLAGS


def emit(**record):
    print(json.dumps(record), flush=True)


def timed_sweep(job, shards, **engine):
    with tempfile.TemporaryDirectory() as run_dir:
        began = time.perf_counter()
        report = run_sweep(job, shards, SweepFiles(run_dir).store(job), progress=False,
                           **engine)
        return time.perf_counter() - began, report


def selected_shards(job):
    units = {site: min(count, FLAGS.shard_size * FLAGS.shards_per_conv)
             for site, count in job.units().items()}
    return unit_shards(job.name, units, FLAGS.shard_size)


def measure_trace():
    convs = tuple(int(c) for c in FLAGS.convs)
    for tap_all in (False, True):
        job = FilterVizJob(steps=FLAGS.steps, convs=convs, tap_all=tap_all,
                           batch_size=FLAGS.shard_size)
        shards = selected_shards(job)
        seconds, report = timed_sweep(job, shards)
        emit(part="trace", tap_all=tap_all, convs=convs, units=report.units, steps=FLAGS.steps,
             seconds=round(seconds, 1), units_per_s=round(report.units / seconds, 3))


def measure_engines(probe=False):
    convs = tuple(int(c) for c in FLAGS.convs)
    job = FilterVizJob(steps=FLAGS.steps, convs=convs, batch_size=FLAGS.shard_size)
    shards = selected_shards(job)
    if probe:
        job = ProbeJob(work=FLAGS.probe_work)
        shards = unit_shards(job.name, {"probe": 16 * FLAGS.shard_size}, FLAGS.shard_size)
    from keras_sd_interp.sweeps import engines

    began = time.perf_counter()   # the local cluster's start is paid once, not per run
    engines.connect(workers=2)
    emit(part="ray_init", seconds=round(time.perf_counter() - began, 1))
    if probe:  # warm Ray's worker processes (a fresh one costs tens of seconds here), untimed
        timed_sweep(ProbeJob(work=1), shards[:2], engine="ray", workers=2)
    for engine, workers in (("inprocess", 1), ("ray", 1), ("ray", 2)):
        seconds, report = timed_sweep(job, shards, engine=engine, workers=workers)
        emit(part="engines_probe" if probe else "engines", engine=engine, workers=workers, units=report.units,
             seconds=round(seconds, 1), units_per_s=round(report.units / seconds, 3))


def measure_sd14():
    """Cost per filter-step on SD v1.4 sizes, random weights, 256x256, batch of shard_size."""
    convs = tuple(int(c) for c in FLAGS.convs)
    job = FilterVizJob(model="sd14", img_height=256, img_width=256, random_weights=True,
                       steps=FLAGS.steps, convs=convs, batch_size=FLAGS.shard_size)
    shards = selected_shards(job)
    began = time.perf_counter()
    context = job.build()
    built = time.perf_counter() - began
    for shard in shards:
        job.run(context, shard)  # the first call traces
        began = time.perf_counter()
        job.run(context, shard)
        seconds = time.perf_counter() - began
        emit(part="sd14", site=shard.site, units=shard.size, steps=FLAGS.steps,
             build_s=round(built, 1), seconds=round(seconds, 1),
             filter_steps_per_s=round(shard.size * FLAGS.steps / seconds, 3))


def sae_jobs(size):
    """The three SAE jobs of the atlas at `size` (latents, or prompts for collection)."""
    from keras_sd_interp.sae.collect import ShardPlan, training_prompts
    from keras_sd_interp.sweeps.jobs.sae_collect import SaeCollectJob
    from keras_sd_interp.sweeps.jobs.sae_latents import SaeEditJob, SaeVizJob

    latent_shards = unit_shards("sae", {"sae": size * FLAGS.sae_shards}, size)
    common = dict(profile_prompts=16, num_steps=10, batch_size=size)
    collect = SaeCollectJob(prompts=tuple(training_prompts(size * FLAGS.sae_shards)[0]),
                            plan=ShardPlan(num_steps=25, batch_size=size))
    return [(SaeVizJob(steps=FLAGS.sae_viz_steps, **common), latent_shards),
            (SaeEditJob(**common), latent_shards), (collect, collect.shards())]


def measure_sae():
    """Per job: model build + profile, each shard's seconds (the first traces); units/s over
    the shards after the first (steady) and over all (with build)."""
    sizes = [int(size) for size in FLAGS.sae_shard_sizes] or [FLAGS.shard_size]
    for size, (job, shards) in ((size, pair) for size in sizes for pair in sae_jobs(size)):
        if job.name not in FLAGS.sae_job_names:
            continue
        began = time.perf_counter()
        context = job.build()
        built = time.perf_counter() - began
        seconds = []
        for shard in shards:
            began = time.perf_counter()
            job.run(context, shard.__class__(job.name, shard.site, shard.start, shard.stop))
            seconds.append(time.perf_counter() - began)
        steady = sum(s.size for s in shards[1:]) / max(sum(seconds[1:]), 1e-9)
        emit(part="sae", job=job.name, shard_size=size, shards=len(shards),
             build_s=round(built, 1), shard_s=[round(x, 1) for x in seconds],
             steady_units_per_s=round(steady, 3),
             units_per_s_with_build=round(sum(s.size for s in shards)
                                          / (built + sum(seconds)), 3))


def measure_batch():
    """Corrected descent on the tiny U-Net, per conv and batch size: a 3-step warm-up (the
    trace), then --steps timed steps; the batches of a conv run back to back."""
    from keras_sd_interp.featureviz import DescentSettings, conv_target, optimize_latents
    from keras_sd_interp.lens.taps import conv_filter_count

    unet, _ = FilterVizJob().models()
    for conv in (int(c) for c in FLAGS.convs):
        count = conv_filter_count("tiny", conv)
        for steps, timed in ((3, False), (FLAGS.steps, True)):
            for batch in (int(b) for b in FLAGS.batch_sizes):
                targets = [conv_target(unet, conv, f % count, "corrected") for f in range(batch)]
                began = time.perf_counter()
                optimize_latents(unet, targets, DescentSettings.corrected(steps=steps),
                                 progress=False)
                seconds = time.perf_counter() - began
                if timed:
                    emit(part="batch", conv=conv, filters=count, batch=batch, steps=steps,
                         seconds=round(seconds, 2),
                         filter_steps_per_s=round(batch * steps / seconds, 1))


def main(_):
    {"batch": measure_batch, "trace": measure_trace, "engines": measure_engines, "sd14": measure_sd14, "sae": measure_sae,
     "engines_probe": lambda: measure_engines(probe=True)}[FLAGS.part]()


if __name__ == "__main__":
    app.run(main)
