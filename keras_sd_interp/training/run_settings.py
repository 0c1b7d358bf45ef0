"""A run folder remembers the settings it was started with, so that a rerun resumes only the
same run: `check_run_settings(run_dir, {"seed": 0, ...})` writes `settings.json` the first time
and afterwards raises ValueError naming the first setting that differs."""

import json
import os

from keras_sd_interp import io

SETTINGS_FILE = "settings.json"


def check_run_settings(run_dir, settings):
    """Records `settings` (dict name -> JSON value, names as the script's flags) in `run_dir`,
    or checks them against the recorded ones; returns the path of the settings file."""
    path = os.path.join(run_dir, SETTINGS_FILE)
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as read back
    if not os.path.isfile(path):
        os.makedirs(run_dir, exist_ok=True)
        io.save_json(path, settings)
        return path
    with open(path) as f:
        recorded = json.load(f)
    for name in sorted(set(recorded) | set(settings)):
        if recorded.get(name) != settings.get(name):
            raise ValueError(
                f"--{name}={settings.get(name)!r} differs from the run in {run_dir!r}, started "
                f"with --{name}={recorded.get(name)!r}: rerun with the same flags to resume it, "
                "or give a new --run_dir"
            )
    return path
