"""The atlas's pipeline: the sweeps' shards and the model's weights into one record per unit,
handed to a writer (`reports.atlas.AtlasFiles`).

    sweep_files = SweepFiles(run_dir)            # reports.shards, built by the caller
    run_atlas_sweeps(viz_jobs, activity_job, sweep_files, units=range(8))
    build_atlas(unet, sweep_files, viz_jobs, activity_job, AtlasFiles(out_dir), convs=[9])

Only shards already in `sweep_files` are read (run the sweeps first: `scripts/build_atlas.py` does
both); a unit without a visualization shard gets none on its page.
"""

import numpy as np

from keras_sd_interp.atlas import (SelectivityTop, TopExamples, timestep_activity,
                                   unit_connections, word_scores)
from keras_sd_interp.circuits import find_circuits, main_path
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.lens.graph import inventory
from keras_sd_interp.sae.features import position_classes
from keras_sd_interp.sweeps import prompt_shards, unit_shards
from keras_sd_interp.sweeps.jobs.filters import conv_site


def viz_images(sweep_files, job, conv_index):
    """filter -> uint8 image of `job` for conv `conv_index`, from the shards on disk."""
    store, images = sweep_files.store(job), {}
    units = job.units()
    site = conv_site(conv_index)
    if site not in units:
        return images
    for shard in unit_shards(job.name, {site: units[site]}, job.batch_size):
        arrays = store.load(shard)
        if arrays is not None:
            images.update({f: arrays["images"][f - shard.start]
                           for f in range(shard.start, shard.stop)})
    return images


class ActivityTables:
    """The activity job's shards read once: prompts, images and per-group top examples,
    timestep curves and word scores. Groups: conv indices (ints) and "sae"."""

    def __init__(self, sweep_files, job, groups, num_top=4, shard_size=8):
        """shard_size: the activity sweep's prompts per shard (its files' grid)."""
        store = sweep_files.store(job)
        self.prompts, left, right = job.prompts()
        self.images, self.timesteps = {}, None
        tops = {g: TopExamples(num_top) for g in groups}
        means, peaks = {g: [] for g in groups}, {g: [] for g in groups}
        seen, selectivity = [], SelectivityTop()
        for shard in prompt_shards(job.name, job.num_prompts, shard_size):
            arrays = store.load(shard)
            if arrays is None:
                continue
            seen.append(arrays["prompt_index"])
            self.timesteps = arrays["timesteps"]
            self.images.update(zip(arrays["prompt_index"].tolist(), arrays["images"]))
            for g in groups:
                if f"{g}.peak" in arrays:
                    tops[g].add(arrays, g)
                    means[g].append(arrays[f"{g}.mean"])
                    peaks[g].append(arrays[f"{g}.peak"])
            if "sae.token_peak" in arrays and "sae" in groups:   # shards from before: none
                index = arrays["prompt_index"]
                width = arrays["sae.token_peak"].shape[2]
                classes = position_classes(left[index], right[index], width)     # (n, w)
                selectivity.add(arrays["sae.token_peak"], np.broadcast_to(
                    classes[:, None, :], arrays["sae.token_peak"].shape[:3]))
        if not seen:
            raise FileNotFoundError(f"no activity shards in {sweep_files.job_dir(job)}: run "
                                    "the activity sweep first")
        index = np.concatenate(seen)
        self.top = {g: tops[g].result() for g in groups if peaks[g]}
        self.curves = {g: timestep_activity(means[g]) for g in self.top}
        self.words = {g: word_scores(np.concatenate(peaks[g]), left[index], right[index],
                                     CLASS_NAMES) for g in self.top}
        self.selectivity = selectivity.result() if selectivity.values is not None else None

    def unit(self, group, unit, num_words=3):
        """The top examples, activity curve and driving words of one unit (JSON-ready, with
        the heat maps as float32 arrays under "map")."""
        top = self.top[group]
        examples = [{"prompt_index": int(top["prompt_index"][i, unit]),
                     "prompt": self.prompts[int(top["prompt_index"][i, unit])],
                     "value": float(top["value"][i, unit]), "step": int(top["step"][i, unit]),
                     "timestep": int(self.timesteps[int(top["step"][i, unit])]),
                     "pos": int(top["pos"][i, unit]),
                     "map": np.asarray(top["maps"][i, unit], np.float32)}
                    for i in range(len(top["value"]))]
        scores = self.words[group][:, unit]
        order = [int(w) for w in np.argsort(-np.nan_to_num(scores, nan=-np.inf))[:num_words]]
        return {"top": examples, "activity": self.curves[group][:, unit].tolist(),
                "timesteps": self.timesteps.tolist(),
                "words": [{"word": CLASS_NAMES[w], "score": float(scores[w])} for w in order]}


def conv_records(unet, sweep_files, viz_jobs, tables, conv_index, units=None, num_links=8):
    """One record per filter of conv `conv_index` (all, or those in `units`)."""
    entry = inventory(unet)[conv_index]
    links = unit_connections(unet, conv_index, num_links)
    images = {job.name: viz_images(sweep_files, job, conv_index) for job in viz_jobs}
    records = []
    for f in range(entry.kernel_shape[3]):
        if units is not None and f not in units:
            continue
        record = {"id": f"conv_{conv_index}/{f}", "group": f"conv_{conv_index}",
                  "conv": conv_index, "filter": f, "name": entry.name, "role": entry.role,
                  "layer_index": entry.layer_index,
                  "viz": {name: found[f] for name, found in images.items() if f in found},
                  **links[f], **tables.unit(conv_index, f)}
        records.append(record)
    return records


def sae_job_units(sweep_files, job, units=None):
    """latent -> {array name: its row} of an SAE job's shards on disk (shards of the job's
    `batch_size`; `units`: those only)."""
    store, found = sweep_files.store(job), {}
    for shard in unit_shards(job.name, job.units(), job.batch_size):
        arrays = None
        if units is None or any(shard.start <= u < shard.stop for u in units):
            arrays = store.load(shard)
        if arrays is None:
            continue
        for u in range(shard.start, shard.stop):
            found[u] = {name: value[u - shard.start] for name, value in arrays.items()
                        if name != "objective"}
    return found


def selectivity_record(selectivity, unit):
    """The class selectivity of one latent, JSON-ready, or None without the shards' data."""
    if selectivity is None:
        return None
    counts = selectivity["counts"][:, unit]
    return {"word": CLASS_NAMES[int(selectivity["class_"][unit])],
            "share": float(selectivity["share"][unit]), "peak": float(selectivity["peak"][unit]),
            "top": int(counts.sum()),
            "counts": [{"word": CLASS_NAMES[k], "count": int(counts[k])}
                       for k in np.argsort(-counts, kind="stable") if counts[k]]}


def preview_record(edit_job, found):
    """The amplify / ablate preview of one latent from its SaeEditJob row, or None."""
    if found is None:
        return None
    return {"prompt": edit_job.profile_prompt_list()[int(found["prompt_index"])],
            "amplify": edit_job.amplify, "peak": float(found["peak"]),
            **{name: found[name] for name in ("before", "amplified", "ablated")},
            "change_amplified": float(found["change_amplified"]),
            "change_ablated": float(found["change_ablated"])}


def sae_records(tables, units=None, sweep_files=None, sae_jobs=()):
    """One record per SAE latent (all, or those in `units`); `sae_jobs`: the SaeVizJob /
    SaeEditJob whose shards in `sweep_files` add visualizations and previews."""
    if "sae" not in tables.top:
        return []
    count = tables.top["sae"]["value"].shape[1]
    chosen = [u for u in range(count) if units is None or u in units]
    rows = {job.name: sae_job_units(sweep_files, job, chosen) for job in sae_jobs}
    edit = next((job for job in sae_jobs if job.name == "sae_edit"), None)
    records = []
    for u in chosen:
        viz = rows.get("sae_viz", {}).get(u)
        records.append({
            "id": f"sae/{u}", "group": "sae", "conv": None, "filter": u,
            "name": f"SAE latent {u}", "role": "sae", "layer_index": None,
            "viz": {"sae_viz": viz["images"]} if viz else {},
            "viz_timestep": int(viz["timestep"]) if viz else None,
            "viz_fires": bool(viz["fires"]) if viz else None,
            "selectivity": selectivity_record(tables.selectivity, u),
            "preview": preview_record(edit, rows.get("sae_edit", {}).get(u)) if edit else None,
            "incoming": [], "outgoing": [], **tables.unit("sae", u, num_words=10)})
    return records


def paper_circuits(unet, top_k=5):
    """The paper's circuits (mode "paper"), main path only: list of {"rank", "steps": [{conv,
    filter, name, strength}]}."""
    found = find_circuits(unet, top_k=top_k, mode="paper")
    return [{"rank": c["rank"],
             "steps": [{"conv": s["conv_index"], "filter": s["filter"], "name": s["name"],
                        "strength": s["strength"]} for s in main_path(c["steps"])]}
            for c in found["circuits"]]


def build_atlas(unet, sweep_files, viz_jobs, activity_job, files, convs, units=None,
                sae_units=None, num_top=4, circuits_top_k=5, prompt_shard_size=8,
                progress=True, sae_jobs=()):
    """Reads the shards, makes every record and hands them to `files` (an AtlasFiles):
    `files.write(records_by_group, circuits, prompts_images)`. Returns the number of units.
    sae_jobs: SaeVizJob / SaeEditJob (their shards of `batch_size` latents)."""
    from tqdm.auto import tqdm

    groups = list(convs) + (["sae"] if sae_units is None or len(sae_units) else [])
    tables = ActivityTables(sweep_files, activity_job, groups, num_top, prompt_shard_size)
    by_group = {}
    for k in tqdm(convs, desc="atlas convs", disable=not progress):
        by_group[f"conv_{k}"] = conv_records(unet, sweep_files, viz_jobs, tables, k, units)
    sae = sae_records(tables, sae_units, sweep_files, sae_jobs) if "sae" in groups else []
    if sae:
        by_group["sae"] = sae
    files.write(by_group, paper_circuits(unet, circuits_top_k), tables.images)
    return sum(len(records) for records in by_group.values())


def selected_shards(shards, units):
    """The shards whose range holds one of `units` (None: all): the grid stays that of the
    whole sweep, so a part and the whole share their shard files."""
    if units is None:
        return shards
    return [s for s in shards if any(s.start <= u < s.stop for u in units)]


def run_atlas_sweeps(viz_jobs, activity_job, sweep_files, prompt_shard_size=8, units=None,
                     progress=True, sae_jobs=(), sae_units=None, **engine):
    """Runs the visualization sweeps (the units selected, in shards of each job's
    `batch_size`, the grid `viz_images` reads back), the SAE latent sweeps (`sae_jobs`,
    the latents `sae_units`, None: all) and the activity sweep into `sweep_files` (a
    `reports.shards.SweepFiles`: each job's store);
    returns {job name: SweepReport}. `engine`: run_sweep's engine, workers, address."""
    from keras_sd_interp.sweeps import run_sweep

    reports = {}
    chosen = [(job, job.batch_size, units) for job in viz_jobs]
    chosen += [(job, job.batch_size, sae_units) for job in sae_jobs]
    for job, size, selection in chosen:
        shards = selected_shards(unit_shards(job.name, job.units(), size), selection)
        reports[job.name] = run_sweep(job, shards, sweep_files.store(job),
                                      progress=progress, **engine)
    shards = prompt_shards(activity_job.name, activity_job.num_prompts, prompt_shard_size)
    reports[activity_job.name] = run_sweep(activity_job, shards,
                                           sweep_files.store(activity_job),
                                           progress=progress, **engine)
    return reports
