"""Helpers for tests of scripts: import one with its flags parsed, or run it in a subprocess."""

import contextlib
import importlib.util
import os
import pathlib
import subprocess
import sys

from absl import flags

FLAGS = flags.FLAGS
ROOT = pathlib.Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def parsed_script(name, *args):
    """scripts/{name}.py imported (its flags and validators defined) and parsed with `args`;
    its flags are removed afterwards, so scripts whose flag names clash share a process."""
    before = set(FLAGS)
    spec = importlib.util.spec_from_file_location(f"script_{name}",
                                                  ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        FLAGS([name] + list(args))
        yield module
    finally:
        FLAGS.unparse_flags()
        for flag_name in set(FLAGS) - before:
            delattr(FLAGS, flag_name)


def run_script(name, *args, timeout=1800):
    """Runs scripts/{name}.py with `args` in a fresh process: CompletedProcess (text)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
