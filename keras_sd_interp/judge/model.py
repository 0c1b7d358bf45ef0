"""The judge: a small Keras CNN that classifies 28x28 Fashion-MNIST items into 10 classes.

Input: images (B, 28, 28, 1) float32 in [-1, 1] (the DDPM's range). Output: logits (B, 10).
The layer named `features` is the penultimate representation (B, 128) used for the
Frechet judge distance.
"""

import keras
from keras import layers

FEATURES_LAYER = "features"
NUM_CLASSES = 10


def conv_bn_relu(x, channels, name):
    """3x3 conv + batch norm + ReLU. (B, H, W, C) -> (B, H, W, channels)."""
    x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    return layers.ReLU()(layers.BatchNormalization(name=f"{name}_bn")(x))


def build_judge(width=24, feature_dim=128, dropout=0.3):
    """Builds the classifier: 28x28x1 -> logits (B, 10); `features` (B, feature_dim) before the head.

    Three conv stages (28x28, 14x14, 7x7 with width, 2 width, 4 width channels): small enough
    to train in minutes on a shared 2-core CPU.
    """
    images = keras.Input((28, 28, 1), name="images")
    x = layers.MaxPooling2D(2)(conv_bn_relu(images, width, "block1"))   # 14x14
    x = layers.MaxPooling2D(2)(conv_bn_relu(x, 2 * width, "block2"))    # 7x7
    x = conv_bn_relu(x, 4 * width, "block3")
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(images, logits, name="fashion_judge")
