"""The atlas end to end at a tiny size: the filter and activity sweeps (bundled tiny model, 2
steps, one conv, 4 filters, 4 prompts), the HTML built from their shards, checked link by link
and image by image in headless Chromium (networking off), plus the summaries' numbers."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from keras_sd_interp import io
from keras_sd_interp.atlas import TopExamples, word_scores
from keras_sd_interp.sweeps.jobs.activity import ActivityJob, unit_summary
from keras_sd_interp.sweeps.jobs.filters import PLAIN_CONVS, FilterVizJob, conv_role
from keras_sd_interp.sweeps.jobs.sae_latents import SaeEditJob, SaeVizJob

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CONV, UNITS, SAE_UNITS = 9, [0, 1, 2, 3], [0, 1, 2]
SAE_COMMON = dict(profile_prompts=4, num_steps=2, batch_size=2)


def test_unit_summary_finds_peak_step_and_position():
    acts = np.zeros((3, 2, 2, 4, 5), np.float32)      # (S, n, h, w, c)
    acts[1, 0, 1, 2, 3] = 7.0                          # image 0, unit 3: step 1, position 6
    acts[2, 1, 0, 0, 3] = 2.0
    summary = unit_summary(acts)
    assert summary["peak"][0, 3] == 7.0 and summary["peak"][1, 3] == 2.0
    assert (summary["peak_step"][0, 3], summary["peak_pos"][0, 3]) == (1, 6)
    assert summary["maps"].shape == (2, 5, 2, 4) and summary["maps"][0, 3, 1, 2] == 7.0
    np.testing.assert_allclose(summary["mean"][1, 0, 3], 7.0 / 8)


def test_top_examples_stream_equals_one_pass():
    rng = np.random.default_rng(0)

    def shard(start, n):
        peak = rng.normal(size=(n, 3)).astype(np.float32)
        return {"prompt_index": np.arange(start, start + n), "u.peak": peak,
                "u.peak_step": np.zeros((n, 3), np.int16), "u.peak_pos": np.zeros((n, 3), np.int16),
                "u.maps": np.repeat(peak[:, :, None, None], 2, axis=2).astype(np.float16)}

    shards = [shard(0, 5), shard(5, 4), shard(9, 6)]
    top = TopExamples(num=3)
    for arrays in shards:
        top.add(arrays, "u")
    peaks = np.concatenate([s["u.peak"] for s in shards])
    expected = np.argsort(-peaks, axis=0)[:3]
    np.testing.assert_array_equal(top.result()["prompt_index"], expected)
    np.testing.assert_array_equal(top.result()["value"], np.take_along_axis(peaks, expected, 0))


def test_word_scores_pick_the_named_class():
    peaks = np.array([[5.0, 0.0], [1.0, 0.0], [1.0, 3.0], [1.0, 0.0]])
    left, right = np.array([8, 1, 2, 1]), np.array([-1, 2, -1, 3])
    scores = word_scores(peaks, left, right, [str(i) for i in range(10)])
    assert np.nanargmax(scores[:, 0]) == 8 and scores[2, 1] > 0 and np.isnan(scores[0, 0])


def test_conv_roles_match_the_built_unet(tiny_unet):
    from keras_sd_interp.lens.taps import conv_inventory

    roles = [entry.role for entry in conv_inventory(tiny_unet)]
    assert roles == [conv_role(k) for k in range(52)]
    assert [k for k, r in enumerate(roles) if r == "plain"] == list(PLAIN_CONVS)


@pytest.fixture(scope="module")
def atlas_dir(tmp_path_factory):
    from keras_sd_interp.experiments.atlas import build_atlas, run_atlas_sweeps
    from keras_sd_interp.reports.atlas import AtlasFiles
    from keras_sd_interp.reports.shards import SweepFiles

    root = tmp_path_factory.mktemp("atlas")
    sweep_files = SweepFiles(str(root / "run"))
    viz = FilterVizJob(steps=2, convs=(CONV,), batch_size=4)
    activity = ActivityJob(num_prompts=4, num_steps=2)
    sae_jobs = [SaeVizJob(steps=3, **SAE_COMMON), SaeEditJob(amplify=8.0, **SAE_COMMON)]
    sweeps = dict(prompt_shard_size=2, units=UNITS, progress=False,
                  sae_jobs=sae_jobs, sae_units=SAE_UNITS)
    reports = run_atlas_sweeps([viz], activity, sweep_files, **sweeps)
    assert [len(r.written) for r in reports.values()] == [1, 2, 2, 2]   # SAE: 0-1, 2-3
    again = run_atlas_sweeps([viz], activity, sweep_files, **sweeps)
    assert [len(r.skipped) for r in again.values()] == [1, 2, 2, 2]
    unet = viz.models()[0]   # built once in this process, by the sweep
    count = build_atlas(unet, sweep_files, [viz], activity, AtlasFiles(str(root / "html")),
                        [CONV], UNITS, sae_units=SAE_UNITS, num_top=2, circuits_top_k=2,
                        prompt_shard_size=2, progress=False, sae_jobs=sae_jobs)
    assert count == len(UNITS) + len(SAE_UNITS)
    return str(root / "html")


@pytest.mark.slow
def test_unit_page_holds_its_parts(atlas_dir):
    page = open(os.path.join(atlas_dir, "units", f"conv_{CONV}", "1.html")).read()
    for part in ("Feature visualizations", "Top examples", "Activity over timesteps",
                 "Prompt words that drive it", "incoming", "outgoing", "corrected descent"):
        assert part in page, part
    search = json.load(open(os.path.join(atlas_dir, "search.json")))
    assert {entry["id"] for entry in search} == {f"conv_{CONV}/{u}" for u in UNITS} | {
        f"sae/{u}" for u in SAE_UNITS}
    assert all(entry["words"] for entry in search)
    for u in SAE_UNITS:
        page = open(os.path.join(atlas_dir, "units", "sae", f"{u}.html")).read()
        for part in ("timestep-aware (diffusion preset)", "optimized at t=",
                     "Amplify / ablate preview", "x8: amplified", "ablated", "Class selectivity",
                     "strongest (image, position) peaks", "Activity over timesteps"):
            assert part in page, (u, part)
        assert page.count(" sd)</li>") + page.count("(no prompt names it)") == 10   # all ten
        assert os.path.getsize(os.path.join(atlas_dir, "units", "sae", f"{u}_sae_viz.png")) > 100
        assert page.count('src="data:image/png;base64,') >= 3      # the preview (and top examples)
    layer = open(os.path.join(atlas_dir, "layers", "sae.html")).read()
    assert layer.count("_sae_viz.png") == len(SAE_UNITS)


CRAWLER = """<!DOCTYPE html><html><body><iframe id="f"></iframe><script>
const seen = new Set(), queue = [new URL("index.html", location.href).href], broken = [];
let images = 0;
const frame = document.getElementById("f");
function next() {
  if (!queue.length) { document.body.dataset.pages = seen.size; document.body.dataset.images =
    images; document.body.dataset.broken = broken.join(" ") || "none";
    document.body.dataset.seen = [...seen].join(" "); return; }
  const url = queue.shift(); seen.add(url);
  frame.onload = () => {
    let doc = null; try { doc = frame.contentDocument; } catch (e) {}
    if (!doc || !doc.querySelector("main")) { broken.push("page:" + url); next(); return; }
    for (const img of doc.images) { images++;
      if (!(img.complete && img.naturalWidth > 0)) broken.push("img:" + img.src); }
    for (const a of doc.querySelectorAll("a[href]")) { const target = a.href.split("#")[0];
      if (!seen.has(target) && !queue.includes(target)) queue.push(target); }
    next();
  };
  frame.src = url;
}
next();
</script></body></html>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get "
                    "install chromium; CI's .ci/run installs it)")
def test_chromium_follows_every_link_and_decodes_every_image(atlas_dir, tmp_path):
    crawler = os.path.join(atlas_dir, "crawl.html")
    io.save_text(crawler, CRAWLER)
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--allow-file-access-from-files", "--proxy-server=http://127.0.0.1:9",
              "--proxy-bypass-list=<-loopback>", f"--user-data-dir={tmp_path / 'profile'}",
              "--virtual-time-budget=60000"]
    dom = subprocess.run(common + ["--dump-dom", "file://" + crawler], capture_output=True,
                         text=True, timeout=240).stdout
    pages = sum(name.endswith(".html") and name != "crawl.html"
                for _, _, names in os.walk(atlas_dir) for name in names)
    assert 'data-broken="none"' in dom, dom[-3000:]
    assert f'data-pages="{pages}"' in dom, (pages, dom[-1000:])   # every page reached by links
    assert int(dom.split('data-images="')[1].split('"')[0]) > 3 * len(UNITS)
    os.remove(crawler)
    seen = dom.split('data-seen="')[1].split('"')[0].split()
    assert {u for u in SAE_UNITS if any(s.endswith(f"units/sae/{u}.html") for s in seen)} == set(
        SAE_UNITS)                                       # the SAE pages among them
    shots = os.environ.get("ATLAS_SCREENSHOT_DIR", str(tmp_path))
    os.makedirs(shots, exist_ok=True)
    from PIL import Image

    for name, page in (("unit", f"conv_{CONV}/1.html"), ("sae", "sae/1.html")):
        screenshot = os.path.join(shots, f"screenshot_{name}.png")
        subprocess.run(common + [f"--screenshot={screenshot}", "--window-size=1200,1600",
                                 "file://" + os.path.join(atlas_dir, "units", page)],
                       capture_output=True, timeout=120)
        with Image.open(screenshot) as image:
            assert np.asarray(image.convert("L")).std() > 10   # not a blank page


def test_script_refuses_bad_flags_before_building(tmp_path):
    """The flags are checked while parsing (in this process: a fresh one re-imports TensorFlow,
    10 s, for the same check)."""
    from absl import flags
    from script_helpers import parsed_script

    with pytest.raises(flags.IllegalFlagValueError, match=r"--layers=\['52'\].*52"):
        with parsed_script("build_atlas", "--layers=52", "--viz=corrected_sideways",
                           f"--run_dir={tmp_path}/run"):
            pass
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_sd14_random_weights_small_size_filter_shard_and_links(tmp_path):
    """The --model=sd14 path on random weights at 128x128 (latent 16x16): one shard of conv 51's
    filters visualized into the store, and the weight links of SD v1.4's conv 9."""
    from keras_sd_interp.atlas import unit_connections
    from keras_sd_interp.reports.shards import job_store
    from keras_sd_interp.sweeps import run_sweep, unit_shards

    job = FilterVizJob(model="sd14", img_height=128, img_width=128, random_weights=True,
                       steps=1, convs=(51,), batch_size=2)
    assert job.units() == {"conv_51": 4}
    shards = unit_shards(job.name, job.units(), 2)[:1]
    store = job_store(str(tmp_path), job)
    report = run_sweep(job, shards, store, progress=False)
    assert report.units == 2
    arrays = store.load(shards[0])
    assert arrays["images"].shape == (2, 128, 128, 3) and arrays["images"].dtype == np.uint8
    assert arrays["latents"].shape == (2, 16, 16, 4) and np.isfinite(arrays["losses"]).all()
    links = unit_connections(job.models()[0], 9, num=5)
    assert len(links) == 640                               # res_block_3.conv2: 640 filters
    assert {link["conv"] for link in links[0]["incoming"]} == {8}
    assert {link["conv"] for f in links for link in f["outgoing"]} <= {10, 38}


def test_jobs_pickle_for_ray_and_know_their_units_unbuilt():
    import pickle

    paper = FilterVizJob(mode="paper", steps=300, convs=(8, 9, 10))
    assert paper.units() == {"conv_9": 64, "conv_10": 64}     # conv 8 is a conv1: no page
    for job in (paper, ActivityJob(num_prompts=8), SaeVizJob(steps=5), SaeEditJob()):
        copy = pickle.loads(pickle.dumps(job))
        assert copy == job and copy.settings() == job.settings()
    assert FilterVizJob().settings()["direction"] == "descent"
    assert ActivityJob().settings()["sae_path"].endswith("tiny_st8.npz")
    assert SaeVizJob().units() == {"sae": 1536} and SaeEditJob().settings()["amplify"] == 4.0
    assert len(SaeVizJob(profile_prompts=5).settings()["profile"]) == 5
    with pytest.raises(ValueError, match="no bundled SAE"):
        SaeVizJob(model="sd14").settings()


def test_a_shard_is_padded_to_the_batch_or_to_its_conv_if_smaller():
    """One shape per conv (one trace), and no 32-filter conv computed as a batch of 128."""
    job = FilterVizJob()
    assert job.batch_size == 128 and max(job.units().values()) == 96   # tiny: one shard a conv
    assert [job.padded_size(k) for k in (9, 30, 51)] == [64, 96, 4]
    assert [FilterVizJob(batch_size=64).padded_size(k) for k in (9, 30, 51)] == [64, 64, 4]


def test_streamed_selectivity_equals_class_selectivity():
    """SelectivityTop over shards of token peaks == sae.features.class_selectivity in one pass."""
    from keras_sd_interp.atlas import SelectivityTop
    from keras_sd_interp.sae import SparseAutoencoder
    from keras_sd_interp.sae.features import class_selectivity, encode_tokens, position_classes

    sae = SparseAutoencoder(6, expansion=3, k=2, seed=3)
    rng = np.random.default_rng(1)
    acts = rng.standard_normal((3, 10, 2, 4, 6)).astype(np.float32)   # (S, N, h, w, C)
    left, right = rng.integers(0, 10, 10), np.where(rng.random(10) < 0.3, -1,
                                                    rng.integers(0, 10, 10))
    expected = class_selectivity(sae, acts, left, right, num_top=16)
    peaks = encode_tokens(sae, acts).max(axis=0)                        # (N, h, w, m)
    top = SelectivityTop(num=16)
    for start, stop in ((0, 4), (4, 7), (7, 10)):
        classes = position_classes(left[start:stop], right[start:stop], 4)
        top.add(peaks[start:stop], np.broadcast_to(classes[:, None, :], (stop - start, 2, 4)))
    result = top.result()
    np.testing.assert_allclose(result["peak"], expected["peak"], rtol=1e-6)
    np.testing.assert_allclose(result["share"], expected["share"])
    np.testing.assert_array_equal(result["class_"], expected["class_"])
    assert result["counts"].sum(axis=0).tolist() == [16] * sae.num_latents
