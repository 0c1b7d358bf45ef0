"""training.run_settings: a run folder records its settings once and refuses a rerun with
other ones, naming every setting that differs (the first in name order leads)."""

import json

import pytest

from keras_sd_interp.training.run_settings import check_run_settings


def test_first_call_records_and_a_same_rerun_passes(tmp_path):
    path = check_run_settings(str(tmp_path / "run"), {"seed": 0, "k": 8, "steps": (1, 2)})
    assert json.loads(open(path).read()) == {"seed": 0, "k": 8, "steps": [1, 2]}
    assert check_run_settings(str(tmp_path / "run"), {"seed": 0, "k": 8, "steps": [1, 2]}) == path


def test_every_differing_setting_is_named(tmp_path):
    run = str(tmp_path / "run")
    check_run_settings(run, {"prompts": "ab12", "seed": 0, "k": 8})
    with pytest.raises(ValueError) as refused:
        check_run_settings(run, {"prompts": "cd34", "seed": 1, "k": 8})
    message = str(refused.value)
    assert message.startswith("--prompts='cd34' differs from the run in")
    assert "started with --prompts='ab12'; also --seed=1 (started with 0): rerun" in message
    with pytest.raises(ValueError, match=r"^--k=16 differs .* started with --k=8: rerun"):
        check_run_settings(run, {"prompts": "ab12", "seed": 0, "k": 16})


def test_a_file_and_a_nan_are_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_run_settings(str(tmp_path / "f"), {"seed": 0})
    with pytest.raises(ValueError, match="must be finite"):
        check_run_settings(str(tmp_path / "run"), {"lr": float("nan")})
