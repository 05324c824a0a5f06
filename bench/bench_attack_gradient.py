"""The audit's PGD on an emotion-classifier-sized BatchNorm CNN: eager gradient vs the compiled one, in one run.

    .venv/bin/python bench/bench_attack_gradient.py
"""
import time, numpy as np, tensorflow as tf
from edgekit.audit import attacks
keras = tf.keras; keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((64, 64, 1))] + [l for f in (16, 32, 64) for l in (keras.layers.Conv2D(f, 3, padding="same"),
     keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D())] + [keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")])
x = np.random.default_rng(0).random((200, 64, 64, 1), dtype=np.float32); y = np.arange(200) % 7
attacks.pgd(m, x[:8], y[:8], 0.05, (0, 1), steps=1)
t = time.perf_counter(); attacks.pgd(m, x, y, 0.05, (0, 1), steps=10); c = time.perf_counter() - t
tf.config.run_functions_eagerly(True)
t = time.perf_counter(); attacks.pgd(m, x, y, 0.05, (0, 1), steps=10); e = time.perf_counter() - t
print(f"PGD 10 steps, 200 samples 64x64x1, {m.count_params()} params: eager {e:.2f} s, compiled {c:.2f} s, {e / c:.2f}x")
