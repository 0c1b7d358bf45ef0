"""keras-sd-interp: interpretability for Stable Diffusion in TensorFlow/Keras (keras-cv)."""

from setuptools import find_packages, setup

# Pinned so that a fresh install imports cleanly: the newest tensorflow-datasets pulls a
# tensorflow-metadata built for a protobuf newer than TensorFlow 2.18 allows.
INSTALL_REQUIRES = [
    "tensorflow==2.18.1",
    "keras==3.9.2",
    "keras-cv==0.9.0",
    "tensorflow-datasets==4.9.7",
    "tensorflow-metadata==1.16.1",
    # tensorflow-datasets 4.9.7 imports it to download; newer etils (1.15) no longer brings it.
    "importlib-resources>=6",
    "protobuf==4.25.9",
    "numpy==2.0.2",
    "matplotlib>=3.8",
    "pillow>=10",
    "absl-py>=2.1",
    "tqdm>=4.66",
    "h5py>=3.10",
    "jinja2>=3.1",
    "scipy>=1.11",  # causal tracing's rank stability (Spearman)
    "safetensors>=0.4",  # SAeUron's published SAE checkpoints (sae.safetensors)
]

setup(
    name="keras-sd-interp",
    version="0.1.0",
    description="Look inside the Stable Diffusion U-Net: taps, feature visualization, circuits, DDPM",
    python_requires=">=3.11",
    packages=find_packages(include=["keras_sd_interp", "keras_sd_interp.*"]),
    package_data={"keras_sd_interp": ["assets/**/*", "reports/templates/*.j2"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=8", "pytest-xdist", "nbclient", "nbformat", "ipykernel"],
        # sweeps on Ray (--engine=ray); not in "test": the Ray tests skip without it
        "ray": ["ray>=2.9"],
    },
)
