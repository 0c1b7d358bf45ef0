"""keras-sd-interp: an interpretability toolkit for Stable Diffusion in TensorFlow/Keras.

Importing the package is cheap: TensorFlow and keras-cv load only when a submodule needs them.
Importing it first quiets TensorFlow's CUDA start-up lines on CPU machines (see `tf_startup`).
"""

from keras_sd_interp import tf_startup as _tf_startup

_tf_startup.install()

__version__ = "0.1.0"
