"""keras-sd-interp: an interpretability toolkit for Stable Diffusion in TensorFlow/Keras.

Importing the package is cheap: TensorFlow and keras-cv load only when a submodule needs them.
"""

__version__ = "0.1.0"
