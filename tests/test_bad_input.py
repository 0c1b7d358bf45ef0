"""Every bad input of issue 14 gets a clear error naming the value and what is valid, before any
model is built and before anything is written (docs/bad_input.md lists them with the messages).

Scripts are tested through their flags: each test imports the script (which defines its flags
and their validators), parses a command line and removes the flags again, so scripts whose flag
names clash can share one test process. Nothing here builds a model unless the case needs one.
"""

import contextlib
import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
from absl import app, flags

from keras_sd_interp import cli

FLAGS = flags.FLAGS
SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"


@contextlib.contextmanager
def script(name):
    """Imports scripts/{name}.py (defining its flags); removes its flags afterwards."""
    before = set(FLAGS)
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        FLAGS.unparse_flags()
        for flag_name in set(FLAGS) - before:
            delattr(FLAGS, flag_name)


def parse(*args):
    FLAGS.unparse_flags()
    return FLAGS(["script"] + list(args))


def flag_error(name, *args):
    """The message of the flag error that scripts/{name}.py gives for `args` (str)."""
    with script(name):
        with pytest.raises(flags.IllegalFlagValueError) as error:
            parse(*args)
    return str(error.value)


# --- Scripts: flags checked while parsing, before any model is built. ---

@pytest.mark.parametrize("args, expected", [
    (["--guidance=nan"], "--guidance=nan: must be a finite number"),
    (["--guidance=inf"], "must be a finite number"),
    (["--num_steps=0"], "--num_steps=0: must be a positive integer"),
    (["--num_steps=-3"], "--num_steps=-3: must be a positive integer"),
    (["--num_images=0"], "--num_images=0: must be a positive integer"),
    (["--num_images=-2"], "--num_images=-2: must be a positive integer"),
    (["--scale=0"], "--scale=0: must be a positive integer"),
    (["--weights_dir=/no/such/dir", "--model=sd14"], "weights folder '/no/such/dir' does not exist"),
])
def test_generate_flags(args, expected):
    assert expected in flag_error("generate", *args)


def test_generate_weights_dir_only_with_sd14(tmp_path):
    message = flag_error("generate", f"--weights_dir={tmp_path}")
    assert "is for --model=sd14" in message and "--model=tiny" in message


def test_generate_output_that_is_a_folder(tmp_path):
    assert "is a folder: give a file path" in flag_error("generate", f"--output={tmp_path}")


def test_good_flags_pass(tmp_path):
    with script("generate"):
        parse("--num_steps=2", "--num_images=1", "--guidance=0", f"--output={tmp_path}/a/b.png")
        assert FLAGS.num_steps == 2


@pytest.mark.parametrize("args, expected", [
    (["--learning_rate=nan"], "--learning_rate=nan: must be a finite number > 0"),
    (["--learning_rate=0"], "must be a finite number > 0"),
    (["--learning_rate=-1e-3"], "must be a finite number > 0"),
    (["--epochs=0"], "--epochs=0: must be a positive integer"),
    (["--batch_size=0"], "--batch_size=0: must be a positive integer"),
    (["--steps_per_epoch=0"], "must be a positive integer"),
    (["--max_minutes=nan"], "must be a finite number > 0"),
    (["--timesteps=1"], "must be an integer >= 2"),
    (["--dim=6"], "--dim=6: must be a positive multiple of 4"),
    (["--data_dir=/no/such/dir"], "Fashion-MNIST folder '/no/such/dir' does not exist"),
])
def test_train_ddpm_flags(args, expected):
    assert expected in flag_error("train_ddpm", *args)


def test_out_dir_that_is_a_file_is_refused_before_any_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for name, flag in [("visualize_filters", "out_dir"), ("find_circuits", "out_dir"),
                       ("branch_svd", "out_dir"), ("ddpm_jumps", "out_dir"),
                       ("eval_tiny", "output_dir"), ("train_classifier", "out_dir"),
                       ("train_ddpm", "export_dir"), ("train_ddpm", "checkpoint_dir"),
                       ("train_tiny", "run_dir"), ("train_tiny", "bundle_dir")]:
        extra = ["--layers=12"] if name == "visualize_filters" else []
        message = flag_error(name, f"--{flag}={a_file}", *extra)
        assert f"--{flag}={a_file}" in message and "is a file, not a folder" in message, name
        message = flag_error(name, f"--{flag}={a_file}/below", *extra)
        assert "cannot make folder" in message, name


@pytest.mark.parametrize("args, expected", [
    (["--jumps=abc"], "--jumps=['abc']: 'abc' is not an integer"),
    (["--jumps=250,x"], "'x' is not an integer"),
    (["--jumps=-5"], "[-5] out of range: give integers >= 0"),
    (["--frame_every=0"], "--frame_every=0: must be a positive integer"),
    (["--max_jump_beta=0"], "must be a finite number > 0 and <= 1"),
])
def test_ddpm_jumps_flags(args, expected):
    assert expected in flag_error("ddpm_jumps", *args)


def test_ddpm_jumps_checks_jump_range_before_loading(monkeypatch):
    with script("ddpm_jumps") as module:
        monkeypatch.setattr(module, "load_ddpm_sampler", lambda *a: pytest.fail("model loaded"))
        parse("--jumps=250,999")
        with pytest.raises(app.UsageError, match=r"--jumps=250,999: jump points \[999\] are "
                                                 r"invalid: .* in 0\.\.299"):
            module.main([])


def test_write_jump_chain_refuses_frame_every_zero_before_sampling(tmp_path):
    from keras_sd_interp.reports.ddpm import write_jump_chain

    with pytest.raises(ValueError, match="frame_every=0 must be a positive integer"):
        write_jump_chain(None, None, 0, [50], 0.5, str(tmp_path), frame_every=0)
    assert os.listdir(tmp_path) == []


def test_eval_tiny_missing_bundle_names_its_own_flag(tmp_path):
    message = flag_error("eval_tiny", f"--bundle_dir={tmp_path / 'nope'}")
    assert "does not exist" in message and "--random_weights" not in message
    message = flag_error("eval_tiny", f"--bundle_dir={tmp_path}")
    assert "is not a tiny-model bundle" in message and "record.json is missing" in message
    assert "--random_weights" not in message


@pytest.mark.parametrize("args, expected", [
    (["--num_per_class=0"], "must be a positive integer"),
    (["--num_steps=0"], "must be a positive integer"),
    (["--guidance=nan"], "must be a finite number"),
])
def test_eval_tiny_flags(args, expected):
    assert expected in flag_error("eval_tiny", *args)


@pytest.mark.parametrize("name, args, expected", [
    ("visualize_filters", ["--layers=12", "--steps=0"], "--steps=0: must be a positive integer"),
    ("visualize_filters", ["--layers=12", "--learning_rate=nan"], "must be a finite number > 0"),
    ("visualize_filters", ["--layers=12", "--timestep=1000"], "must be an integer in 0..999"),
    ("visualize_filters", ["--layers=12", "--batch_size=0"], "must be a positive integer"),
    ("visualize_filters", ["--layers=99"], "[99] out of range: give indices in 0..65"),
    ("visualize_filters", ["--convs=52"], "[52] out of range: give indices in 0..51"),
    ("visualize_filters", ["--layers=12", "--filters=x"], "bad index 'x'"),
    ("visualize_filters", [], "give --layers, --convs or --taps"),
    ("visualize_filters", ["--layers=1", "--img_height=0"], "img_height=0 is not valid"),
    ("visualize_filters", ["--layers=1", "--img_width=48"], "positive multiples of 32"),
    ("visualize_filters", ["--layers=1", "--model=sd14", "--img_height=96"],
     "positive multiples of 64"),
    ("find_circuits", ["--top_k=0"], "--top_k=0: must be an integer in 1..60"),
    ("find_circuits", ["--weights_dir=/no/such"], "weights folder '/no/such' does not exist"),
    ("branch_svd", ["--conv_a=52"], "--conv_a=52: must be an integer in 0..51"),
    ("branch_svd", ["--conv_b=-1"], "must be an integer in 0..51"),
    ("branch_svd", ["--mark_a=x"], "bad index 'x'"),
    ("inspect_unet", ["--max_text_length=-1"], "must be an integer >= 0"),
    ("train_classifier", ["--learning_rate=nan"], "must be a finite number > 0"),
    ("train_classifier", ["--epochs=0"], "must be a positive integer"),
    ("train_tiny", ["--ema_decay=1"], "must be a finite number >= 0 and < 1"),
    ("train_tiny", ["--learning_rate=inf"], "must be a finite number > 0"),
    ("train_tiny", ["--diffusion_steps=-1"], "must be an integer >= 0"),
    ("causal_trace", ["--noise_scale=nan"], "--noise_scale=nan: must be a finite number > 0"),
    ("causal_trace", ["--noise_scale=0"], "must be a finite number > 0"),
    ("causal_trace", ["--seeds="], "no seed: give initial-latent seeds"),
    ("causal_trace", ["--seeds=0,x"], "'x' is not an integer"),
    ("causal_trace", ["--guidance=nan"], "must be a finite number"),
    ("causal_trace", ["--num_steps=0"], "must be a positive integer"),
    ("causal_trace", ["--chunk_size=0"], "must be a positive integer"),
    ("causal_trace", ["--cases=a sneaker and a bag"], "write 'prompt:subject'"),
    ("causal_trace", ["--cases=a sneaker and a bag:cat"],
     "subject 'cat' is not in the prompt 'a sneaker and a bag': give one of its words"),
    ("causal_trace", ["--model=sd14", "--prompt=a photo of a bottle", "--subject=a cat"],
     "subject 'a cat' is not in the prompt 'a photo of a bottle'"),
    ("causal_trace", ["--prompt=a sneaker"], "give --prompt and --subject together"),
    ("causal_trace", ["--cases=a photo of a bottle:bottle"], "--scorer=judge: the judge cannot "
     "read 'a photo of a bottle'"),
    ("causal_trace", ["--cases=a sneaker and a bag:sneaker,a bag and a coat:coat"],
     "the subjects stand at different positions ('sneaker' is word 1 of 'a sneaker and a bag', "
     "'coat' is word 4 of 'a bag and a coat')"),
    ("causal_trace", ["--model=sd14", "--scorer=judge"], "--scorer=judge reads Fashion-MNIST"),
    ("causal_trace", ["--step_range=3:2"], "need 0 <= start < stop <= --num_steps (10)"),
    ("causal_trace", ["--step_range=0:11"], "need 0 <= start < stop <= --num_steps (10)"),
    ("causal_trace", ["--step_range=a"], "write start:stop"),
    ("causal_trace", ["--model=sd15"], "value should be one of <tiny|sd14>"),
    ("train_tiny", ["--text_encoder=clip", "--clip_dir=/no/such"], "holds no tiny CLIP"),
    ("train_tiny", ["--text_encoder=bert"], "value should be one of <joint|clip>"),
    ("train_tiny", ["--autoencoder_from=/no/such"], "bundle folder '/no/such' does not exist"),
    ("train_tiny_clip", ["--steps=0"], "--steps=0: must be a positive integer"),
    ("train_tiny_clip", ["--vision_width=100"], "must be a positive multiple of 64"),
    ("train_tiny_clip", ["--vision_patch_size=7"], "must divide the 64x64 input"),
    ("train_tiny_clip", ["--text_heads=3"], "must divide the text width 64"),
    ("train_tiny_clip", ["--captions=fancy"], "value should be one of <layout_first|plain|spatial>"),
])
def test_other_script_flags(name, args, expected):
    assert expected in flag_error(name, *args)


@pytest.mark.parametrize("args, expected", [
    (["--lam=nan"], "--lam=nan: must be a finite number > 0"),
    (["--guidance=nan"], "must be a finite number >= 0"),
    (["--num_steps=0"], "must be an integer in 1..1000"),
    (["--num_seeds=0"], "must be a positive integer"),
])
def test_edit_model_flags(args, expected):
    assert expected in flag_error("edit_model", *args)


def test_edit_model_refuses_a_keep_set_holding_the_concept(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in flag_error("edit_model", f"--output_dir={tmp_path}/file")
    with script("edit_model") as module:
        parse("--concept=sneaker", "--target=bag", "--keep=coat,sneaker")
        with pytest.raises(app.UsageError, match=r"holds \['sneaker'\], the edit's own"):
            module._check_flags()
        parse("--concept=sneaker", "--target=bag", "--keep=others")
        assert module._check_flags()[:2] == (None, "others") and "sneaker" not in FLAGS.keep


def test_branch_svd_marks_refused_before_the_model_load(monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was built before the marks were checked")

    with script("branch_svd") as branch_svd_script:
        parse("--model=sd14", "--conv_a=9", "--mark_a=999")
        monkeypatch.setattr(branch_svd_script, "paper_unet", no_load)
        with pytest.raises(app.UsageError, match=r"marks \[999\] on conv 9's side out of range: "
                                                 r"conv 9 has filters 0\.\.639"):
            branch_svd_script.main([])


def test_branch_svd_marks_out_of_range(tiny_unet, tmp_path):
    from keras_sd_interp.circuits.branch_svd import check_marks

    check_marks(tiny_unet, 9, [0, 31], [5])
    with pytest.raises(ValueError, match=r"marks \[999\] on conv 9's side out of range: conv 9 "
                                         r"has filters 0\.\.63"):
        check_marks(tiny_unet, 9, [999])
    with pytest.raises(ValueError, match=r"marks \[-1\] on the other side"):
        check_marks(tiny_unet, 9, [], [-1])
    assert os.listdir(tmp_path) == []


# --- cli helpers ---

def test_out_dir_problem(tmp_path):
    assert cli.out_dir_problem(str(tmp_path / "new" / "deeper")) is None
    (tmp_path / "f").write_text("x")
    assert "is a file, not a folder" in cli.out_dir_problem(str(tmp_path / "f"))
    with pytest.raises(ValueError, match="cannot make folder"):
        cli.require_out_dir(str(tmp_path / "f" / "sub"))


# --- Library functions ---

def test_taps_resolve_types(tiny_unet):
    from keras_sd_interp.lens import taps

    with pytest.raises(TypeError, match="is a bool, not a layer index"):
        taps.resolve(tiny_unet, True)
    assert taps.resolve(tiny_unet, np.int64(12)) == taps.resolve(tiny_unet, 12)
    with pytest.raises(TypeError, match="is not an int layer index"):
        taps.resolve(tiny_unet, 12.0)
    assert taps.address_list("conv_9") == ["conv_9"]
    assert taps.address_list([np.int32(3), "conv_9"]) == [3, "conv_9"]


def test_run_with_cache_takes_one_bare_address(tiny_unet):
    from keras_sd_interp.lens import taps
    from tests.conftest import random_unet_inputs

    inputs = random_unet_inputs(tiny_unet, 1)
    _, single = taps.run_with_cache(tiny_unet, inputs, "conv_9")
    _, listed = taps.run_with_cache(tiny_unet, inputs, ["conv_9"])
    assert list(single) == ["conv_9"]
    np.testing.assert_array_equal(single["conv_9"], listed["conv_9"])
    model = taps.tap_model(tiny_unet, "conv_9")
    assert model.addresses == ["conv_9"] and model is taps.tap_model(tiny_unet, ["conv_9"])


@pytest.mark.parametrize("per_filter", [0, -1, 33, 1.5, True])
def test_find_circuits_per_filter(tiny_unet, per_filter):
    from keras_sd_interp.circuits import find_circuits

    with pytest.raises(ValueError, match=r"per_filter=.* must be an integer in 1\.\.32"):
        find_circuits(tiny_unet, 1, per_filter=per_filter)


@pytest.mark.parametrize("size", [0, -32])
def test_load_unet_refuses_zero_or_negative_size(size):
    from keras_sd_interp.models import load_pipeline, load_unet

    with pytest.raises(ValueError, match=f"img_height={size} is not valid for the 'tiny' U-Net"):
        load_unet("tiny", img_height=size, random_weights=True)
    with pytest.raises(ValueError, match=f"img_width={size} is not valid"):
        load_pipeline("tiny", img_width=size, random_weights=True)


def test_weights_dir_is_for_sd14_only(tmp_path):
    from keras_sd_interp.models import load_pipeline, load_unet

    for load in (load_unet, load_pipeline):
        with pytest.raises(ValueError, match="is for model 'sd14'.*leave weights_dir None"):
            load("tiny", weights_dir=str(tmp_path), random_weights=True)


def test_missing_weights_dir_names_the_folder(tmp_path):
    from keras_sd_interp.models import weights

    with pytest.raises(weights.MissingWeightsError, match="that folder does not exist"):
        weights.sd14_weight_path("decoder", str(tmp_path / "nope"))


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all" * 10])
def test_corrupt_sd14_h5_names_the_file_and_the_hash(tmp_path, content):
    from keras_sd_interp.models import weights

    path = tmp_path / "kcv_diffusion_model.h5"
    path.write_bytes(content)
    with pytest.raises(weights.CorruptWeightsError) as error:
        weights.load_sd14_weights(None, "diffusion_model", str(tmp_path))
    message = str(error.value)
    assert str(path) in message and "not a valid keras-cv kcv_diffusion_model.h5" in message
    assert weights.SD14_FILES["diffusion_model"].sha256 in message


def test_bad_bundle_names_the_file(tmp_path):
    from keras_sd_interp.models import bundled

    (tmp_path / "weights.npz").write_bytes(b"\x80\x04garbage" * 20)
    (tmp_path / "record.json").write_text("{not json")
    with pytest.raises(ValueError, match="weights.npz is not a readable tiny-model bundle"):
        bundled.load_component(None, "unet", str(tmp_path))
    with pytest.raises(ValueError, match="record.json is not a readable tiny-model bundle"):
        bundled.read_record(str(tmp_path))
    (tmp_path / "record.json").write_text('{"max_length": 8}')
    with pytest.raises(ValueError, match="record.json is not a readable .* no latent_scale, "
                                         "text_layers"):
        bundled.read_record(str(tmp_path))


def test_missing_bundle_message_fits_the_caller(tmp_path):
    from keras_sd_interp.models import bundled

    with pytest.raises(FileNotFoundError, match="is not a tiny-model bundle") as error:
        bundled.read_record(str(tmp_path))
    assert "--random_weights" not in str(error.value)
    assert "does not exist" in bundled.bundle_problem(str(tmp_path / "nope"))
    assert bundled.bundle_problem(bundled.ASSETS_DIR) is None


def test_eval_tiny_corrupt_bundle_is_refused_at_parsing(tmp_path):
    import shutil

    from keras_sd_interp.models import bundled

    shutil.copy(os.path.join(bundled.ASSETS_DIR, "record.json"), tmp_path)
    (tmp_path / "weights.npz").write_bytes(b"\x80\x04garbage" * 20)
    message = flag_error("eval_tiny", f"--bundle_dir={tmp_path}")
    assert f"{tmp_path}/weights.npz is not a readable tiny-model bundle file" in message


def test_text_to_image_refuses_prompt_none():
    from keras_sd_interp.models import load_pipeline

    pipe = load_pipeline("tiny", random_weights=True)
    with pytest.raises((TypeError, ValueError), match="prompt"):
        pipe.text_to_image(None, num_steps=1)


@pytest.mark.parametrize("learning_rate", [float("nan"), 0.0, -1.0, float("inf")])
def test_train_ddpm_refuses_bad_learning_rate_before_any_work(tmp_path, learning_rate):
    from keras_sd_interp.training.ddpm import train_ddpm

    with pytest.raises(ValueError, match="must be a finite number > 0"):
        train_ddpm(str(tmp_path / "ckpt"), learning_rate=learning_rate, data_dir="/no/such")
    assert not (tmp_path / "ckpt").exists()


def test_train_ddpm_stops_at_the_first_non_finite_loss(tmp_path, monkeypatch):
    from keras_sd_interp.training import ddpm as training
    from test_fashion_mnist import write_idx  # tests/ is on sys.path under pytest

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte",
              rng.integers(0, 256, (32, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, (32,), dtype=np.uint8))
    losses = iter([0.5, float("nan"), 0.4])
    monkeypatch.setattr(training, "make_train_step", lambda *a: lambda x0: next(losses))
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1, step 2"):
        training.train_ddpm(str(tmp_path / "ckpt"), epochs=1, batch_size=16, timesteps=50,
                            dim=8, data_dir=str(tmp_path), jit_compile=False)
    assert not (tmp_path / "ckpt").exists()


def test_export_refuses_non_finite_weights(tmp_path):
    from keras_sd_interp.ddpm.unet import build_unet
    from keras_sd_interp.models.keras_weights import save_weights_atomic
    from keras_sd_interp.training import ddpm as training

    model = build_unet(dim=8)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    checkpoint = tmp_path / "ckpt"
    save_weights_atomic(model, str(checkpoint / training.WEIGHTS_FILE))
    (checkpoint / training.STATE_FILE).write_text(json.dumps({"settings": {"dim": 8}}))
    with pytest.raises(ValueError, match="has non-finite weights .* not exporting it over"):
        training.export_checkpoint(str(checkpoint), str(tmp_path / "assets"))
    assert not (tmp_path / "assets").exists()
