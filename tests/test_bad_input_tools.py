"""Issue 25's probe of the tools added after docs/bad_input.md's first table (prompt-to-prompt,
the atlas, the tiny CLIP, train_tiny's CLIP flags, the sd14 paths of causal tracing, editing,
the SAE and feature visualization) and of their library calls: every bad input gets a clear
error naming the value and what is valid, before any model is built (docs/bad_input.md).

Script cases parse the flags (and, where a check needs a file, run `main` with the model and
data loaders replaced by a trap), so nothing here builds a model; each case takes well under a
second after the imports.
"""

import types

import numpy as np
import pytest
from absl import app, flags
from script_helpers import parsed_script

FLAGS = flags.FLAGS


def flag_error(name, *args):
    """The flag error scripts/{name}.py gives while parsing `args` (str)."""
    with pytest.raises(flags.IllegalFlagValueError) as error:
        with parsed_script(name, *args):
            pass
    return str(error.value)


@pytest.fixture
def no_models(monkeypatch):
    """Model and data loaders that fail the test if a script reaches them."""
    import keras_sd_interp.data as data
    import keras_sd_interp.models as models

    def trap(*args, **kwargs):
        raise AssertionError("a model or data set was loaded before the flags were checked")

    for module, name in [(models, "load_pipeline"), (models, "load_unet"),
                         (data, "load_fashion_mnist")]:
        monkeypatch.setattr(module, name, trap)


def usage_error(name, *args):
    """The app.UsageError that scripts/{name}.py's main gives for `args`, before any model."""
    with parsed_script(name, *args) as module:
        with pytest.raises(app.UsageError) as error:
            module.main([])
    return str(error.value)


@pytest.fixture
def empty_dir(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return str(folder)


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    return str(path)


# --- Scripts: refused while the flags are parsed ---

@pytest.mark.parametrize("name, args, expected", [
    ("prompt_to_prompt", ["--blend_words=boot;bag", "--threshold=2"],
     "--threshold=2.0: must be a finite number >= 0 and < 1"),
    ("prompt_to_prompt", ["--threshold=0.5"], "--threshold set the local blend, which is off "
     "without --blend_words"),
    ("prompt_to_prompt", ["--reweight_words=boot"], "--reweight_words are "
     "--controller=reweight's; with --controller=replace they would be ignored"),
    ("prompt_to_prompt", ["--source=a cat and a boot", "--edits=a cat and a bag"],
     "prompt 'a cat and a boot': unknown words ['cat']"),
    ("build_atlas", ["--layers=9", "--units=999"], "--units=999: conv 9 has filters 0..63"),
    ("build_atlas", ["--sae_units=-1"], "bad index '-1'"),
    ("build_atlas", ["--sae_units=5-2"], "bad index '5-2'"),
    ("build_atlas", ["--sae_units=99999"], "99999 is out of range: the SAE has 1536 latents"),
    ("build_atlas", ["--model=sd14", "--sae_units=3"], "atlas has no SAE"),
    ("build_atlas", ["--workers=2"], "--workers=2, --address=None are Ray's"),
    ("build_atlas", ["--address=auto"], "--address='auto' are Ray's"),
    ("train_tiny_clip", ["--warmup_steps=5000"], "--warmup_steps must be below --steps"),
    ("train_tiny", ["--init_from_bundle", "--autoencoder_from=keras_sd_interp/assets/tiny"],
     "--autoencoder_from would be ignored"),
    ("causal_trace", ["--components=nomatch*"], "'nomatch*' matches no component of "
     "--model=tiny --parts=both"),
    ("causal_trace", ["--parts=unet", "--components=text.*"], "'text.*' matches no component"),
    ("train_sae", ["--site=bogus"], "--site='bogus' is not a U-Net site"),
    ("train_sae", ["--site=spatial_transformer_99"], "is not a U-Net site"),
])
def test_new_tool_flags(name, args, expected):
    assert expected in flag_error(name, *args)


def test_good_new_tool_flags_pass():
    for name, args in [("causal_trace", ["--components=*.attn2,text.layer_0.*@3"]),
                       ("build_atlas", ["--layers=9", "--units=0-63", "--sae_units=0-15"]),
                       ("build_atlas", ["--engine=ray", "--workers=2"]),
                       ("prompt_to_prompt", ["--blend_words=boot;bag", "--threshold=0.5"]),
                       ("train_sae", ["--site=res_block_3.conv1"])]:
        with parsed_script(name, *args):
            pass


def test_out_and_run_dirs_that_are_files(a_file):
    for flag in ("out_dir", "run_dir"):
        message = flag_error("build_atlas", f"--{flag}={a_file}")
        assert f"--{flag}={a_file}" in message and "is a file, not a folder" in message


def test_clip_dirs_checked_with_the_scorer(empty_dir):
    message = flag_error("causal_trace", f"--clip_dir={empty_dir}")
    assert "is for --scorer=clip; the judge (--scorer=auto) would ignore it" in message
    message = flag_error("causal_trace", "--scorer=clip", f"--clip_dir={empty_dir}")
    assert "holds no tiny CLIP" in message and "record.json is missing" in message
    message = flag_error("causal_trace", "--model=sd14", "--prompt=a photo of a bottle",
                         "--subject=bottle", f"--clip_dir={empty_dir}")
    assert "config.json is missing from --clip_dir" in message
    message = flag_error("train_tiny", "--text_encoder=joint", f"--clip_dir={empty_dir}")
    assert "is for --text_encoder=clip; --text_encoder=joint trains its own" in message


# --- Scripts: refused in main, before any model (checks that read files or several flags) ---

@pytest.mark.parametrize("args, expected", [
    (["--k=100000"], "--k=100000: the SAE has 1536 latents"),
    (["--positions=100000"], "spatial_transformer_8 has 8 positions per image (2 x 4)"),
    (["--prompts=a bag"], "--prompts: not read with --model=tiny"),
    (["--model=sd14", "--num_prompts=5"], "--num_prompts: not read with --model=sd14"),
    (["--model=sd14", "--prompts="], "--prompts is empty"),
])
def test_train_sae_checks_before_any_model(no_models, tmp_path, args, expected):
    message = usage_error("train_sae", f"--run_dir={tmp_path}/run", *args)
    assert expected in message
    assert not (tmp_path / "run").exists()


def test_train_sae_prompt_file_on_tiny(no_models, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a bag\n")
    assert "--prompts_file: not read with --model=tiny" in usage_error(
        "train_sae", f"--run_dir={tmp_path}/run", f"--prompts_file={prompts}")


@pytest.mark.parametrize("args, expected", [
    (["--channels=999", "--timestep=500"], "--channels [999] out of range: "
     "spatial_transformer_8 of --model=tiny has channels 0..95"),
    (["--site=bogus", "--channels=1", "--timestep=500"], "--site='bogus' is not a U-Net site"),
    (["--latents=1", "--prompts="], "--prompts is empty"),
    (["--latents=1", "--context_prompt=a cat"], "--context_prompt: prompt 'a cat': unknown "
     "words ['cat']"),
    (["--latents=1", "--prompts=a cat"], "--prompts: prompt 'a cat': unknown words"),
    (["--latents=1", "--timestep=300", "--prompts=a bag"], "--prompts are traced for "
     "--timestep=peak only"),
    (["--sae=/no/such.npz", "--channels=1", "--timestep=500"], "--sae=/no/such.npz is read for "
     "--latents only"),
])
def test_visualize_features_checks_before_any_model(no_models, args, expected):
    assert expected in usage_error("visualize_features", *args)


@pytest.mark.parametrize("args, expected", [
    (["--layers=4,5"], "--layers: only --method=locoedit reads --layers"),
    (["--scorer=clip"], "--scorer: only --method=locoedit reads"),
    (["--method=locoedit", "--layers=4", "--window=3"], "--window: only"),
    (["--method=locoedit", "--scorer=clip", "--clip_preset=nope"], "--clip_preset: unknown "
     "CLIP preset 'nope'"),
])
def test_edit_model_scorer_flags_where_they_are_read(no_models, args, expected):
    assert expected in usage_error("edit_model", *args)


def test_edit_model_clip_dir_checked_and_used_on_tiny(no_models, empty_dir):
    message = usage_error("edit_model", "--method=locoedit", "--scorer=clip",
                          f"--clip_dir={empty_dir}")
    assert "holds no tiny CLIP" in message
    message = usage_error("edit_model", "--method=locoedit", f"--clip_dir={empty_dir}")
    assert "is for --scorer=clip; the judge (--scorer=judge) would ignore it" in message


# --- Library: indices (issue 25 item 9) ---

@pytest.fixture(scope="module")
def sae():
    from keras_sd_interp.sae import SparseAutoencoder

    return SparseAutoencoder(4, expansion=2, k=2, seed=0)   # 8 latents


@pytest.mark.parametrize("latents, expected", [
    (-1, r"latent -1 is out of range: latents are 0\.\.7"),
    (8, r"latent 8 is out of range: latents are 0\.\.7"),
    ([], "no latent given"),
    (2.5, "latent 2.5 is not an integer index"),
    (True, "latent True is not an integer index"),
])
def test_feature_edit_refuses_bad_latents(sae, latents, expected):
    from keras_sd_interp.sae import features

    with pytest.raises(ValueError, match=expected):
        features.feature_edit(sae, latents, 0.0)


def test_feature_edit_refuses_a_non_finite_scale_and_keeps_good_latents(sae):
    import tensorflow as tf

    from keras_sd_interp.sae import features

    with pytest.raises(ValueError, match="scale=nan: give a finite number"):
        features.feature_edit(sae, 3, float("nan"))
    x = tf.random.stateless_normal((2, 3, 4), seed=(0, 1))
    last = features.feature_edit(sae, 7, 0.0)(x)        # the last latent, by its own index
    np.testing.assert_allclose(features.feature_edit(sae, np.int64(7), 0.0)(x), last)


def test_latent_readers_refuse_bad_latents_and_widths(sae):
    from keras_sd_interp.sae import features

    acts = np.random.default_rng(0).normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
    for call in (lambda: features.top_examples(sae, acts, -1),
                 lambda: features.feature_map(sae, acts[:, 0], 8),
                 lambda: features.timestep_scores(sae, acts, -2)):
        with pytest.raises(ValueError, match="out of range: latents are 0..7"):
            call()
    with pytest.raises(ValueError, match="activations of width 3 .* d_in=4"):
        features.encode_tokens(sae, acts[..., :3])
    with pytest.raises(ValueError, match="1 timesteps for activations of 2 steps"):
        features.peak_timestep(sae, acts, [999], 3)
    assert features.peak_timestep(sae, acts, [999, 500], 3) in (999, 500)


def test_objectives_refuse_negative_and_too_large_indices(sae):
    import tensorflow as tf

    from keras_sd_interp.featureviz import objectives as obj

    acts = {"s": tf.reshape(tf.range(2 * 2 * 2 * 4, dtype=tf.float32), (2, 2, 2, 4))}
    for make in (lambda: obj.channel("s", -1), lambda: obj.neuron("s", -1),
                 lambda: obj.sae_feature("s", sae, -1),
                 lambda: obj.feature_batch("s", sae, latents=[-1])):
        with pytest.raises(ValueError, match="-1 is out of range"):
            make()
    with pytest.raises(ValueError, match=r"channel 4 is out of range for site 's': channels "
                                         r"are 0\.\.3"):
        obj.channel("s", 4)(acts)
    np.testing.assert_allclose(obj.channel("s", 3)(acts).numpy(), [9.0, 25.0])


# --- Library: sweeps ---

class _Job:
    name = "j"

    def __init__(self, settings=None):
        self._settings = settings or {"a": 1}

    def settings(self):
        return self._settings

    def build(self):
        return None

    def run(self, context, shard):
        return {"v": np.arange(shard.start, shard.stop)}


def test_shard_store_settings_and_folder(tmp_path, a_file):
    from keras_sd_interp.reports.shards import ShardStore

    with pytest.raises(ValueError, match="is a file, not a folder"):
        ShardStore(a_file, {"a": 1})
    with pytest.raises(TypeError, match="settings=None: give a dict"):
        ShardStore(str(tmp_path / "r0"), None)
    with pytest.raises(ValueError, match="setting lr=nan: a run's settings must be finite"):
        ShardStore(str(tmp_path / "r1"), {"lr": float("nan")})
    with pytest.raises(TypeError, match="setting f=<object"):
        ShardStore(str(tmp_path / "r2"), {"f": object()})
    ShardStore(str(tmp_path / "r3"), {"lr": np.float32(0.5), "n": np.int64(3)})
    store = ShardStore(str(tmp_path / "r3"), {"lr": 0.5, "n": 3})   # resumes: the same values
    assert store.settings == {"lr": 0.5, "n": 3}
    assert not (tmp_path / "r1").exists()


def test_shard_store_refuses_object_arrays(tmp_path):
    from keras_sd_interp.reports.shards import ShardStore
    from keras_sd_interp.sweeps import Shard

    store, shard = ShardStore(str(tmp_path / "r"), {"a": 1}), Shard("j", "x", 0, 2)
    with pytest.raises(ValueError, match=r"arrays \['names'\] hold Python objects"):
        store.write(shard, {"names": np.array(["a", None], dtype=object)})
    assert not store.done(shard) and store.writes() == []


@pytest.mark.parametrize("call, expected", [
    (lambda s: s.unit_shards("j", {"s": 5}, 1.5), "shard size 1.5 must be an integer >= 1"),
    (lambda s: s.unit_shards("j", {"s": 4}, True), "shard size True"),
    (lambda s: s.unit_shards("j", {"s": -3}, 2), "units of 's'=-3: give an integer count"),
    (lambda s: s.prompt_shards("j", 2.5, 2), "num_prompts=2.5"),
    (lambda s: s.Shard("j", "s", 5, 2), "need integers 0 <= start < stop"),
])
def test_bad_shards(call, expected):
    from keras_sd_interp import sweeps

    with pytest.raises(ValueError, match=expected):
        call(sweeps)


class _MemoryStore:
    """A store that keeps shards in a dict: run_sweep takes any object with these three."""

    def __init__(self, settings):
        self.settings, self.arrays = settings, {}

    def done(self, shard):
        return shard.key in self.arrays

    def write(self, shard, arrays, seconds=0.0):
        self.arrays[shard.key] = arrays


@pytest.mark.parametrize("kwargs, expected", [
    (dict(workers=1.5, engine="ray"), "--workers=1.5 must be an integer >= 1"),
    (dict(workers=2), "--workers=2, --address=None are Ray's"),
    (dict(address="auto"), "--address='auto' are Ray's"),
])
def test_run_sweep_engine_settings(kwargs, expected):
    from keras_sd_interp.sweeps import run_sweep, unit_shards

    store = _MemoryStore({"job": "j", "a": 1})
    with pytest.raises(ValueError, match=expected):
        run_sweep(_Job(), unit_shards("j", {"s": 4}, 2), store, progress=False, **kwargs)
    assert store.arrays == {}


def test_run_sweep_refuses_shards_twice_of_another_job_and_a_job_setting(tmp_path):
    from keras_sd_interp.reports.shards import SweepFiles, job_store
    from keras_sd_interp.sweeps import run_sweep, unit_shards

    shards = unit_shards("j", {"s": 2}, 2)
    store = _MemoryStore({"job": "j", "a": 1})
    with pytest.raises(ValueError, match="shard j/s_00000-00002 is listed twice"):
        run_sweep(_Job(), shards * 2, store, progress=False)
    with pytest.raises(ValueError, match="belongs to job 'k', not to 'j'"):
        run_sweep(_Job(), unit_shards("k", {"s": 2}, 2), store, progress=False)
    with pytest.raises(ValueError, match=r"j.settings\(\) holds 'job'"):
        run_sweep(_Job({"job": "other"}), shards, store, progress=False)
    with pytest.raises(ValueError, match=r"j.settings\(\) holds 'job'"):
        job_store(str(tmp_path / "r"), _Job({"job": "other"}))
    with pytest.raises(ValueError, match=r"the store records --a=2, job 'j' has --a=1"):
        run_sweep(_Job(), shards, _MemoryStore({"job": "j", "a": 2}), progress=False)
    with pytest.raises(ValueError, match=r"the store records --job='k', job 'j' has --job='j'"):
        run_sweep(_Job(), shards, _MemoryStore({"job": "k", "a": 1}), progress=False)
    assert store.arrays == {} and not (tmp_path / "r").exists()
    report = run_sweep(_Job(), shards, SweepFiles(str(tmp_path / "r")).store(_Job()),
                       progress=False)
    assert report.units == 2 and (tmp_path / "r" / "j" / "settings.json").exists()


# --- Library: scoring and concept spans ---

def test_clip_scorer_reads_uint8_batches_and_strings():
    from keras_sd_interp.scoring import ClipScorer

    scorer = ClipScorer(None, None, None, None)   # every check runs before an encoder is called
    images = np.zeros((2, 32, 64, 1), np.uint8)
    with pytest.raises(ValueError, match="images are float32 .*: the scorer reads uint8 0..255"):
        scorer(images.astype(np.float32) / 255, "a bag")
    with pytest.raises(ValueError, match=r"images of shape \(32, 64, 1\): give a batch"):
        scorer(images[0], "a bag")
    with pytest.raises(TypeError, match="texts=None: give one string for all images or a list "
                                        "of 2 strings"):
        scorer(images, None)
    with pytest.raises(ValueError, match="3 texts for 2 images"):
        scorer(images, ["a", "b", "c"])


def test_sd14_clip_scorer_refuses_an_unknown_preset_even_with_random_weights():
    from keras_sd_interp.scoring import sd14_clip_scorer

    with pytest.raises(ValueError, match="unknown CLIP preset 'nope'"):
        sd14_clip_scorer(None, preset="nope", random_weights=True)


def test_concept_span_names_the_phrase_and_refuses_a_prompt_that_is_not_text():
    from keras_sd_interp.lens.tokens import Tokens
    from keras_sd_interp.models.tiny_text import WordTokenizer

    tokenizer = WordTokenizer(max_length=8)
    tokens = Tokens(types.SimpleNamespace(tokens=lambda prompts: np.asarray(tokenizer(prompts))))
    with pytest.raises(ValueError, match=r"phrase 'cat': unknown words \['cat'\]"):
        tokens.span("a sneaker and a bag", "cat")
    with pytest.raises(ValueError, match="phrase 'coat' is not in the prompt"):
        tokens.span("a sneaker and a bag", "coat")
    with pytest.raises(TypeError, match="prompt=None: give a string"):
        tokens.span(None, "bag")
    assert tokens.span("a sneaker and a bag", "BAG").positions == [5]


def test_visualize_filters_checks_conv_filters_before_any_model(monkeypatch):
    with parsed_script("visualize_filters", "--convs=9", "--filters=60-64") as module:
        monkeypatch.setattr(module, "unet_and_decoder",
                            lambda *a: pytest.fail("the U-Net was built"))
        with pytest.raises(app.UsageError, match=r"--filters: 64 is out of range for conv 9: "
                                                 r"it has filters 0\.\.63 \(--model=tiny\)"):
            module.main([])
