"""Quiets TensorFlow's start-up noise for every script, notebook and test that imports the package.

On a machine without a GPU, `import tensorflow` (2.18) prints a dozen lines before anything else:
"Unable to register cuFFT/cuDNN/cuBLAS factory: ... already been registered" (a known double
registration in the wheel) and, at the first device query, "failed call to cuInit". Some go through
TensorFlow's own logging, which `TF_CPP_MIN_LOG_LEVEL` filters when it is set before TensorFlow is
imported; the cuDNN and cuBLAS ones go through absl's C++ logging, which that variable does not
reach even at 3. So `install()`:

1. sets `TF_CPP_MIN_LOG_LEVEL` to 2 (no INFO or WARNING lines) unless the user set it;
2. puts a finder on `sys.meta_path` that runs the first `import tensorflow` (and its device list,
   where cuInit is called) with file descriptor 2 sent to a temporary file, then writes back every
   line except the ones in `NOISE` (cuInit's only when the machine has no NVIDIA driver).

Everything else TensorFlow prints comes through, in order. `TF_CPP_MIN_LOG_LEVEL=0` turns the
filter off (TensorFlow's own level 0 means: show everything). Importing this module is cheap.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "2"

# Lines printed on every start of TensorFlow 2.18 that say nothing about this run.
NOISE = (
    b"Unable to register cuFFT factory",
    b"Unable to register cuDNN factory",
    b"Unable to register cuBLAS factory",
    b"All log messages before absl::InitializeLog() is called are written to STDERR",
    b"Could not find cuda drivers on your machine",
)
# Printed when CUDA cannot start; noise only where no NVIDIA driver is installed.
NO_DRIVER_NOISE = (b"failed call to cuInit",)
NVIDIA_DRIVER_FILE = "/proc/driver/nvidia/version"


def noise_patterns():
    """The byte strings whose lines are dropped: `NOISE`, plus cuInit's without an NVIDIA driver."""
    if os.path.exists(NVIDIA_DRIVER_FILE):
        return NOISE
    return NOISE + NO_DRIVER_NOISE


def drop_noise(text, patterns):
    """`text` (bytes) without the lines that contain any of `patterns`."""
    lines = text.splitlines(keepends=True)
    return b"".join(line for line in lines if not any(pattern in line for pattern in patterns))


@contextlib.contextmanager
def filtered_stderr(patterns):
    """Sends file descriptor 2 to a temporary file inside the block, then writes back its lines
    without `patterns`. Without a usable descriptor 2 (closed, or no temporary folder), it
    filters nothing."""
    try:
        saved = os.dup(2)
        capture = tempfile.TemporaryFile()
    except OSError:
        yield
        return
    with capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            os.write(2, drop_noise(capture.read(), patterns))


class QuietLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` inside `filtered_stderr`, then lists the devices there
    too (the first device query is where cuInit runs; listing physical devices still leaves
    `tf.config.set_visible_devices` and memory growth settable)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr(noise_patterns()):
            self.loader.exec_module(module)
            module.config.list_physical_devices()
        module.__loader__ = self.loader
        module.__spec__.loader = self.loader


class QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` the usual way and hands it to a `QuietLoader`; used once, then removed."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = QuietLoader(spec.loader)
        return spec


def installed():
    """Whether the finder is on `sys.meta_path`."""
    return any(isinstance(finder, QuietTensorFlowFinder) for finder in sys.meta_path)


def uninstall():
    """Takes the finder off `sys.meta_path` (TensorFlow's next first import is not filtered)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, QuietTensorFlowFinder)]


def install():
    """Sets the default log level and, unless TensorFlow is already imported or the user asked for
    level 0, filters the noise of its first import (see the module docstring)."""
    os.environ.setdefault(LEVEL_VARIABLE, DEFAULT_LEVEL)
    if os.environ[LEVEL_VARIABLE] == "0" or "tensorflow" in sys.modules or installed():
        return
    sys.meta_path.insert(0, QuietTensorFlowFinder())
