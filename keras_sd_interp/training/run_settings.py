"""A run folder remembers the settings it was started with, so that a rerun resumes only the
same run: `check_run_settings(run_dir, {"seed": 0, ...})` writes `settings.json` the first time
and afterwards raises ValueError naming the settings that differ."""

import json
import math
import os

import numpy as np

from keras_sd_interp import io

SETTINGS_FILE = "settings.json"


def check_run_settings(run_dir, settings):
    """Records `settings` (dict name -> JSON value, names as the script's flags) in `run_dir`,
    or checks them against the recorded ones; returns the path of the settings file.

    Raises ValueError naming every setting that differs (the first in name order leads), for a
    run_dir that is a file, or a setting that is NaN or inf (it would
    never equal itself, so the run could never resume); TypeError for settings that are not a
    dict or a value that is not JSON (NumPy scalars are taken as their Python values)."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"run folder {run_dir!r} is a file, not a folder: give a folder (new or "
                         "one started by the same command)")
    settings = json_settings(settings)
    path = os.path.join(run_dir, SETTINGS_FILE)
    if not os.path.isfile(path):
        os.makedirs(run_dir, exist_ok=True)
        io.save_json(path, settings)
        return path
    with open(path) as f:
        recorded = json.load(f)
    differing = [name for name in sorted(set(recorded) | set(settings))
                 if recorded.get(name) != settings.get(name)]
    if differing:
        name, others = differing[0], differing[1:]
        also = "; also " + ", ".join(f"--{other}={settings.get(other)!r} (started with "
                                     f"{recorded.get(other)!r})" for other in others)
        raise ValueError(
            f"--{name}={settings.get(name)!r} differs from the run in {run_dir!r}, started "
            f"with --{name}={recorded.get(name)!r}{also if others else ''}: rerun with the "
            "same flags to resume it, or give a new --run_dir"
        )
    return path


def _plain(name, value):
    """A setting as JSON reads it back (tuples -> lists, NumPy scalars -> Python), checked."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"setting {name}={value}: a run's settings must be finite (NaN never "
                         "equals itself, so the run could never be resumed)")
    if isinstance(value, (list, tuple)):
        return [_plain(f"{name}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(f"{name}.{k}", v) for k, v in value.items()}
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise TypeError(f"setting {name}={value!r} is a {type(value).__name__}: settings are "
                        "JSON values (str, int, float, bool, None, lists and dicts of them)")
    return value


def json_settings(settings):
    """`settings` (dict name -> value) as they read back from settings.json; see
    `check_run_settings` for what is refused."""
    if not isinstance(settings, dict):
        raise TypeError(f"settings={settings!r}: give a dict name -> value (names as the "
                        "script's flags)")
    return {str(name): _plain(name, value) for name, value in settings.items()}
