"""scripts/train_sae.py: flags checked before any model, one resume record (a rerun with other
settings is refused naming the flag), the size budget, and (slow) end to end on tiny and on
SD v1.4 with random weights at 64x64."""

import json

import numpy as np
import pytest
from absl import app, flags
from script_helpers import parsed_script, run_script





@pytest.mark.parametrize("args, expected", [
    (["--learning_rate=nan"], "--learning_rate=nan: must be a finite number > 0"),
    (["--learning_rate=0"], "must be a finite number > 0"),
    (["--output=x.npy"], "must end in .npz"),
    (["--positions=0"], "--positions=0: must be a positive integer"),
    (["--max_gb=inf"], "must be a finite number > 0"),
    (["--model=sd14", "--prompts_file=/no/such.txt"], "must be an existing text file"),
])
def test_bad_flags_stop_while_parsing(args, expected):
    with pytest.raises(flags.IllegalFlagValueError, match=expected):
        with parsed_script("train_sae", *args):
            pass


def test_resumed_run_with_other_settings_is_refused_naming_the_flag(tmp_path):
    run = ["--run_dir=" + str(tmp_path / "run"), "--output=" + str(tmp_path / "s.npz")]
    trained = []
    with parsed_script("train_sae", *run, "--k=8") as module:
        module.train = lambda *a: trained.append(a)      # the settings check runs before it
        module.main([])
    assert len(trained) == 1
    recorded = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert recorded["k"] == 8 and recorded["learning_rate"] == 1e-3
    with parsed_script("train_sae", *run, "--k=16") as module:
        module.train = lambda *a: trained.append(a)
        with pytest.raises(app.UsageError, match="--k=16 differs .* started with --k=8"):
            module.main([])
    with parsed_script("train_sae", *run, "--k=8", "--train_steps=9000") as module:  # may grow
        module.train = lambda *a: trained.append(a)
        module.main([])
    assert len(trained) == 2


def test_ray_flags_without_ray_are_refused_while_parsing():
    with pytest.raises(flags.IllegalFlagValueError, match="--workers=2.* are Ray's"):
        with parsed_script("train_sae", "--workers=2"):
            pass
    with pytest.raises(flags.IllegalFlagValueError, match="--engine=spark: value should be one of <inprocess|ray>"):
        with parsed_script("train_sae", "--engine=spark"):
            pass


def test_a_run_resumes_only_on_the_engine_that_collected_it(tmp_path):
    """The two engines lay shards out differently: switching is refused before any model."""
    run = tmp_path / "run"
    (run / "activations").mkdir(parents=True)
    (run / "activations" / "shard_00000.npz").write_bytes(b"")
    args = (f"--run_dir={run}", f"--output={tmp_path}/s.npz")
    with parsed_script("train_sae", *args, "--engine=ray") as module:
        module.train = lambda *a: pytest.fail("trained a run of the other engine")
        with pytest.raises(app.UsageError, match="collected with --engine=inprocess; resume "
                                                   "with --engine=inprocess"):
            module.main([])
    other = tmp_path / "other" / "activations" / "shards" / "sae_acts"
    other.mkdir(parents=True)
    (other / "prompts_00000-00002.npz").write_bytes(b"")
    with parsed_script("train_sae", f"--run_dir={tmp_path}/other",
                       f"--output={tmp_path}/s.npz") as module:
        module.train = lambda *a: pytest.fail("trained a run of the other engine")
        with pytest.raises(app.UsageError, match="collected with --engine=ray"):
            module.main([])


def test_sd14_budget_is_checked_before_any_model(tmp_path):
    args = ("--model=sd14", "--max_gb=0.1", f"--run_dir={tmp_path}/r")
    with parsed_script("train_sae", *args) as module:
        with pytest.raises(app.UsageError, match=r"0\.263 GB on disk, above the budget "
                                                   r"--max_gb=0\.1"):
            module.main([])
    assert not (tmp_path / "r").exists()




@pytest.mark.slow
def test_tiny_end_to_end_and_resume(tmp_path):
    from keras_sd_interp.sae import load_sae

    args = ["--num_prompts=4", "--num_steps=2", "--collect_batch=2", "--batch_size=8",
            "--expansion=2", "--k=4", f"--run_dir={tmp_path}/run", f"--output={tmp_path}/s.npz"]
    first = run_script("train_sae", *args, "--train_steps=4")
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_script("train_sae", *args, "--train_steps=6")   # resumes: shards kept, 2 steps
    assert second.returncode == 0, second.stderr[-2000:]
    record = json.loads((tmp_path / "s.json").read_text())
    assert [row["step"] for row in record["history"]] == [4, 6]
    assert load_sae(str(tmp_path / "s.npz")).num_latents == 192
    refused = run_script("train_sae", *args, "--train_steps=6", "--seed=1")
    # the seed draws the prompts, so their digest differs too: both are named
    assert refused.returncode != 0 and "also --seed=1 (started with 0)" in refused.stderr


@pytest.mark.slow
def test_tiny_collection_on_ray_trains_the_same_sae(tmp_path):
    """--engine=ray (a local cluster, 2 workers): the sweep runner's shards hold the in-process
    collection's arrays, so the SAE trained on them is the same to float precision."""
    pytest.importorskip("ray")
    from keras_sd_interp.sae import load_sae

    common = ["--num_prompts=4", "--num_steps=2", "--collect_batch=2", "--batch_size=8",
              "--expansion=2", "--k=4", "--train_steps=4"]
    saes = {}
    for engine in ("inprocess", "ray"):
        extra = ["--engine=ray", "--workers=2"] if engine == "ray" else []
        done = run_script("train_sae", *common, *extra, f"--run_dir={tmp_path}/{engine}",
                          f"--output={tmp_path}/{engine}.npz")
        assert done.returncode == 0, done.stderr[-2000:]
        saes[engine] = load_sae(str(tmp_path / f"{engine}.npz"))
    record = json.loads((tmp_path / "ray.json").read_text())
    assert (record["engine"], record["num_shards"]) == ("ray", 2)
    assert len(list((tmp_path / "ray" / "activations").glob("shards/sae_acts/prompts_*.npz"))) == 2
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        np.testing.assert_allclose(getattr(saes["ray"], name).numpy(),
                                   getattr(saes["inprocess"], name).numpy(), atol=1e-5)


@pytest.mark.slow
def test_sd14_random_weights_end_to_end(tmp_path):
    """SD v1.4 topology with random weights at 64x64 (st_8: 2 x 2 positions x 1280), CLIP's real
    tokenizer (its vocabulary from keras-cv's cache, or skipped)."""
    from keras_sd_interp.models.weights import MissingWeightsError, sd14_weight_path
    from keras_sd_interp.sae import load_sae

    try:
        sd14_weight_path("bpe_vocab")
    except MissingWeightsError as error:
        pytest.skip(f"CLIP's BPE vocabulary is not reachable (the PyPI sdist openai-clip has "
                    f"it): {error}")
    result = run_script("train_sae", "--model=sd14", "--random_weights", "--img_height=64",
                        "--img_width=64",
                        "--prompts=a photo of a cat,a bottle in a room", "--num_steps=2",
                        "--collect_batch=1", "--batch_size=4", "--expansion=1", "--k=4",
                        "--train_steps=2", f"--run_dir={tmp_path}/run",
                        f"--output={tmp_path}/sd14.npz")
    assert result.returncode == 0, result.stderr[-3000:]
    sae = load_sae(str(tmp_path / "sd14.npz"))
    assert (sae.d_in, sae.num_latents) == (1280, 1280)
    shards = sorted((tmp_path / "run" / "activations").glob("shard_*.npz"))
    assert len(shards) == 2
    with np.load(shards[0]) as shard:
        assert shard["tokens"].shape == (2 * 4, 1280)               # 2 steps x 2 x 2 positions
