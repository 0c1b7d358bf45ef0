"""The main job's page: one small reproduce run (random tiny U-Net, 2 steps), its HTML checked
for images on disk and in headless Chromium, and resume: changed settings refuse, corrupt PNGs
are recomputed."""

import html.parser
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from keras_sd_interp import io
from keras_sd_interp.featureviz import DescentSettings
from keras_sd_interp.experiments.paper import reproduce_paper
from keras_sd_interp.reports import paper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def fake_decoder(latents):
    """Latent (n, 8, 16, 4) -> image (n, 32, 64, 1) in (-1, 1): a fixed smooth map, no model."""
    latents = np.asarray(latents, np.float32)
    image = np.tanh(latents.mean(axis=-1, keepdims=True))
    return np.repeat(np.repeat(image, 4, axis=1), 4, axis=2)


SETTINGS = DescentSettings.paper(steps=2)
CORRECTED = DescentSettings.corrected(steps=2)


@pytest.fixture(scope="module")
def run_dir(tiny_unet, tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("paper_run"))
    reproduce_paper(tiny_unet, fake_decoder, SETTINGS, paper.PaperFiles(out_dir), top_k=1,
                    batch_size=64, progress=False, corrected=CORRECTED)
    return out_dir


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def image_sources(path):
    parser = _Images()
    with open(path) as f:
        parser.feed(f.read())
    return parser.sources


def test_page_shows_paper_corrected_and_kernel_per_step(run_dir):
    sources = image_sources(os.path.join(run_dir, "index.html"))
    rows = json.load(open(os.path.join(run_dir, "circuits.json")))["circuits"][0]
    assert rows["rank"] == 0
    for folder in ("filters/", "corrected_descent/", "corrected_ascent/", "weights/"):
        assert any(s.startswith(folder) for s in sources), folder
    paper_images = [s for s in sources if s.startswith("filters/")]
    descents = [s for s in sources if s.startswith("corrected_descent/")]
    assert len(paper_images) == len(descents) > 10
    for source in sources:
        assert not os.path.isabs(source) and io.image_is_valid(os.path.join(run_dir, source))
    text = open(os.path.join(run_dir, "index.html")).read()
    assert "wraps around modulo 256" in text and "Appendix A" in text
    markdown = open(os.path.join(run_dir, "index.md")).read()
    assert markdown.count("](corrected_ascent/") == len(descents)
    recorded = json.load(open(os.path.join(run_dir, "settings.json")))
    assert (recorded["steps"], recorded["corrected_steps"], recorded["top_k"]) == (2, 2, 1)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get "
                    "install chromium; CI's .ci/run installs it)")
def test_page_loads_in_headless_chromium(run_dir, tmp_path):
    """Every <img> must load (complete, naturalWidth > 0); a screenshot is kept for a look."""
    page = open(os.path.join(run_dir, "index.html")).read()
    check = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
             " document.body.dataset.total = imgs.length; document.body.dataset.broken = "
             "imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src).join(' ')"
             " || 'none'; });</script></body>")
    check_path = os.path.join(run_dir, "check.html")
    with open(check_path, "w") as f:
        f.write(page.replace("</body>", check))
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run(common + ["--dump-dom", "file://" + check_path], capture_output=True,
                         text=True, timeout=120).stdout
    total = len(image_sources(os.path.join(run_dir, "index.html")))
    assert f'data-total="{total}"' in dom and 'data-broken="none"' in dom, dom[-2000:]
    screenshot = os.environ.get("PAPER_PAGE_SCREENSHOT", str(tmp_path / "page.png"))
    subprocess.run(common + [f"--screenshot={screenshot}", "--window-size=1400,2400",
                             "file://" + os.path.join(run_dir, "index.html")],
                   capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1400, 2400)
        assert np.asarray(image.convert("L")).std() > 10  # not a blank page


def test_resume_refuses_changed_settings_naming_the_flag(tmp_path):
    record = paper.run_record(DescentSettings.paper(steps=30), DescentSettings.corrected(), 5,
                              model="tiny")
    paper.check_resume(str(tmp_path), record)  # empty folder: fine
    io.save_json(str(tmp_path / "settings.json"), record)
    paper.check_resume(str(tmp_path), record)  # same settings: resume
    changed = paper.run_record(DescentSettings.paper(steps=60), DescentSettings.corrected(), 5,
                               model="tiny")
    with pytest.raises(paper.SettingsChanged, match="--steps was 30, now 60.*--overwrite"):
        paper.check_resume(str(tmp_path), changed)
    paper.check_resume(str(tmp_path), changed, overwrite=True)


def test_resume_refuses_outputs_without_settings(tmp_path):
    (tmp_path / "filters").mkdir()
    with pytest.raises(paper.SettingsChanged, match="no settings.json"):
        paper.check_resume(str(tmp_path), {"steps": 300})


def test_script_refuses_changed_steps_before_building_models(tmp_path, monkeypatch):
    """main refuses (app.run exits 1 with the message) before any model: in this process, as a
    fresh one would re-import TensorFlow (10 s) for the same check."""
    from absl import app
    from script_helpers import parsed_script

    record = paper.run_record(DescentSettings.paper(steps=30), DescentSettings.corrected(), 5,
                              model="tiny", img_height=None, img_width=None,
                              random_weights=False)
    io.save_json(str(tmp_path / "settings.json"), record)
    def no_model(*args):
        raise AssertionError("a model was built before the settings were checked")

    monkeypatch.setattr("keras_sd_interp.models.paper.unet_and_decoder", no_model)
    with parsed_script("reproduce_paper", "--steps=60", f"--out_dir={tmp_path}") as script:
        with pytest.raises(app.UsageError, match="--steps was 30, now 60.*--overwrite"):
            script.main([])
    assert sorted(os.listdir(tmp_path)) == ["settings.json"]


@pytest.mark.long  # 30 s: two descents traced again; the refusals above stay fast
def test_resume_recomputes_corrupt_pngs(tiny_unet, run_dir, tmp_path):
    out_dir = str(tmp_path / "run")
    shutil.copytree(run_dir, out_dir)
    sources = image_sources(os.path.join(out_dir, "index.html"))
    papers = [s for s in sources if s.startswith("filters/")]
    empty, kept = papers[0], papers[1]
    junk = next(s for s in sources if s.startswith("corrected_ascent/"))
    open(os.path.join(out_dir, empty), "wb").close()
    with open(os.path.join(out_dir, junk), "wb") as f:
        f.write(np.random.default_rng(0).bytes(500))
    assert not io.image_is_valid(os.path.join(out_dir, empty))
    assert not io.image_is_valid(os.path.join(out_dir, junk))
    stamp = os.path.getmtime(os.path.join(out_dir, kept))
    reproduce_paper(tiny_unet, fake_decoder, SETTINGS, paper.PaperFiles(out_dir), top_k=1,
                    batch_size=64, progress=False, corrected=CORRECTED)
    for source in (empty, junk):
        path = os.path.join(out_dir, source)
        assert io.image_is_valid(path)
        with open(path, "rb") as f, open(os.path.join(run_dir, source), "rb") as g:
            assert f.read() == g.read()  # the same image as the first run (deterministic)
    assert os.path.getmtime(os.path.join(out_dir, kept)) == stamp
