"""TensorFlow's CUDA start-up lines are dropped for whoever imports the package first."""

import os
import subprocess
import sys

from keras_sd_interp import tf_startup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_drop_noise_keeps_every_other_line():
    text = (b"keep 1\n"
            b"E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory: already registered\n"
            b"keep 2\n"
            b"E external/.../cuda_driver.cc:152] failed call to cuInit: UNKNOWN ERROR (303)\n")
    assert tf_startup.drop_noise(text, tf_startup.NOISE) == (
        b"keep 1\nkeep 2\nE external/.../cuda_driver.cc:152] failed call to cuInit: UNKNOWN ERROR"
        b" (303)\n")
    assert tf_startup.drop_noise(text, tf_startup.NOISE + tf_startup.NO_DRIVER_NOISE) == (
        b"keep 1\nkeep 2\n")


def test_filtered_stderr_writes_back_what_is_not_noise(capfd):
    with tf_startup.filtered_stderr(tf_startup.NOISE):
        os.write(2, b"a real error\nUnable to register cuBLAS factory: twice\n")
    assert capfd.readouterr().err == "a real error\n"


def test_scripts_start_without_cuda_registration_lines():
    """A fresh process that imports the package, then TensorFlow, prints none of `NOISE`; the
    user's own TF_CPP_MIN_LOG_LEVEL is kept."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    code = ("import os, keras_sd_interp, tensorflow as tf; tf.constant(1.0) + 1; "
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            timeout=300, check=True)
    assert result.stdout.decode().strip() == tf_startup.DEFAULT_LEVEL
    for pattern in tf_startup.noise_patterns():
        assert pattern not in result.stderr, result.stderr.decode()
    env["TF_CPP_MIN_LOG_LEVEL"] = "1"
    code = "import os, keras_sd_interp; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            timeout=60, check=True)
    assert result.stdout.decode().strip() == "1"
