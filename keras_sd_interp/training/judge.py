"""Training the judge on the real Fashion-MNIST training set, scoring it on the test set, and
shipping it (float16 weights plus a JSON record in `assets/judge/`)."""

import os
import time

import keras
import numpy as np
from tqdm.keras import TqdmCallback

from keras_sd_interp.data.fashion_mnist import load_fashion_mnist, to_model_range
from keras_sd_interp.io import save_json
from keras_sd_interp.judge.judge import ASSET_DIR, load_judge, predict_classes
from keras_sd_interp.judge.model import build_judge
from keras_sd_interp.models.keras_weights import save_float16_weights


def train_judge(epochs=12, batch_size=128, learning_rate=2e-3, seed=0, data_dir=None,
                max_train_images=None):
    """Trains the judge with Adam, a cosine-decayed learning rate and random horizontal flips.

    Returns (judge, record): the trained keras.Model and a dict with the test accuracy, the
    final training loss and the settings.
    """
    keras.utils.set_random_seed(seed)
    train_images, train_labels = load_fashion_mnist("train", data_dir=data_dir)
    test_images, test_labels = load_fashion_mnist("test", data_dir=data_dir)
    if max_train_images:
        train_images, train_labels = train_images[:max_train_images], train_labels[:max_train_images]
    x_train, x_test = to_model_range(train_images), to_model_range(test_images)

    judge = build_judge()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    judge.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    history = None
    for epoch in range(epochs):  # Flip outside the model so the shipped judge has no augmentation.
        x_epoch = keras.ops.convert_to_numpy(flip(x_train, training=True))
        history = judge.fit(x_epoch, train_labels, batch_size=batch_size, epochs=epoch + 1,
                            initial_epoch=epoch, verbose=0, callbacks=[TqdmCallback(verbose=0)])
    test_loss, test_accuracy = judge.evaluate(x_test, test_labels, batch_size=1000, verbose=0)
    record = {
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "final_train_loss": float(history.history["loss"][-1]),
        "final_train_accuracy": float(history.history["accuracy"][-1]),
        "settings": dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         seed=seed, train_images=int(len(x_train)), test_images=int(len(x_test))),
    }
    return judge, record


def ship_judge(judge, record, out_dir=ASSET_DIR, data_dir=None, started=None, command=None):
    """Writes `judge.weights.h5` (float16) and `judge_record.json` into `out_dir`.

    The shipped float16 file itself, not the float32 model in memory, is scored on the test set
    (`record["shipped_float16_test_accuracy"]`); `train_seconds` counts from `started` (a
    `time.time()`), `command` is the command line. Returns the record written.
    """
    weights_path = os.path.join(out_dir, "judge.weights.h5")
    save_float16_weights(judge, weights_path)
    test_images, test_labels = load_fashion_mnist("test", data_dir=data_dir)
    predicted, _ = predict_classes(load_judge(weights_path), test_images)
    record["shipped_float16_test_accuracy"] = float((predicted == test_labels).mean())
    if started is not None:
        record["train_seconds"] = time.time() - started
    if command is not None:
        record["command"] = command
    record["data"] = "real Fashion-MNIST (train 60,000 / test 10,000) via keras_sd_interp.data"
    save_json(os.path.join(out_dir, "judge_record.json"), record)
    return record
