"""Deep models convert: Keras's recursive walk over a functional model's layer graph
(one frame per layer) gets room (``tfjsconv.deep_stack``), where the process's default
limit of 1000 frames makes tf_keras's own loader fail (ResNetRS270's h5)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfjsconv import api
from tfjsconv.deep_stack import call_with_deep_stack
from tfjsconv.options import ConversionOptions


def _depth(n: int) -> int:
    return 0 if n == 0 else 1 + _depth(n - 1)


def test_deep_recursion_runs_and_the_limit_comes_back() -> None:
    before = sys.getrecursionlimit()
    with pytest.raises(RecursionError):
        _depth(before + 10)
    assert call_with_deep_stack(lambda: _depth(5 * before)) == 5 * before
    assert sys.getrecursionlimit() == before


def test_errors_come_through_unchanged() -> None:
    class Boom(Exception):
        pass

    def fail() -> None:
        raise Boom("the converter's own error")

    with pytest.raises(Boom, match="own error"):
        call_with_deep_stack(fail)


def test_an_interrupt_stops_the_conversion_before_the_caller_cleans_up(tmp_path: Path) -> None:
    """The CLI's cleanup deletes the staging directory when Ctrl-C or SIGTERM arrives; a
    conversion thread still writing into it would leave it half-deleted."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def write_until_stopped() -> None:
        for i in range(60_000):  # a minute at most, should the thread never be stopped
            (tmp_path / f"shard{i}").write_bytes(b"w")
            if i == 5:
                os.kill(os.getpid(), signal.SIGUSR1)  # handled in the main thread
            time.sleep(0.001)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            call_with_deep_stack(write_until_stopped)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    # Once the interrupt is out, nothing more is written (a running thread: ~1 file/ms).
    written = len(os.listdir(tmp_path))
    time.sleep(0.2)
    assert len(os.listdir(tmp_path)) == written < 60_000


def test_a_second_interrupt_stops_waiting_for_a_blocked_conversion() -> None:
    """A conversion blocked in C (a long TensorFlow call) cannot stop before the call
    returns; a second Ctrl-C ends the wait instead of hanging."""
    release = threading.Event()
    in_call = threading.Event()
    interrupts: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        interrupts.append(signum)
        if in_call.is_set():  # a late signal must not interrupt the rest of the test
            raise KeyboardInterrupt

    def blocked() -> None:
        os.kill(os.getpid(), signal.SIGUSR1)
        release.wait()  # a C-level wait: the cancellation lands only after it returns

    def second_interrupt() -> None:
        while not interrupts:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    sender = threading.Thread(target=second_interrupt)
    sender.start()
    in_call.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            call_with_deep_stack(blocked)
        in_call.clear()
        # It waited through the first interrupt, gave up on the second, while the
        # conversion was still blocked.
        assert len(interrupts) == 2 and not release.is_set()
    finally:
        in_call.clear()
        release.set()
        sender.join()
        signal.signal(signal.SIGUSR1, previous)
    for t in threading.enumerate():
        if t.name == "tfjsconv-convert":
            t.join(timeout=10)
            assert not t.is_alive()


LAYERS = 1200  # > the default 1000 frames of tf_keras's recursive graph walk


@pytest.mark.tfjs
def test_a_model_deeper_than_the_default_limit_converts_and_runs(tmp_path: Path, tfjs: Any) -> None:
    import tf_keras

    def build_and_save() -> Any:
        inp = tf_keras.Input((4,), name="x")
        y = inp
        for i in range(LAYERS):  # y -> 0.999 y + 0.001 (i % 3): O(1) all the way down
            layer = tf_keras.layers.Dense(
                4,
                kernel_initializer=tf_keras.initializers.Identity(0.999),
                bias_initializer=tf_keras.initializers.Constant(0.001 * (i % 3)),
            )
            y = layer(y)
        model = tf_keras.Model(inp, y)
        model.save(tmp_path / "deep.h5")
        return model

    model = call_with_deep_stack(build_and_save)  # building it walks the graph too
    with pytest.raises(RecursionError):  # what the default limit does to Keras's loader
        tf_keras.models.load_model(tmp_path / "deep.h5", compile=False)

    out = tmp_path / "graph"
    api.convert(
        str(tmp_path / "deep.h5"),
        str(out),
        ConversionOptions(input_format="keras", output_format="tfjs_graph_model"),
    )
    x = np.linspace(-2.0, 2.0, 8, dtype=np.float32).reshape(2, 4)
    exact = x.astype(np.float64)  # the same float32 weights, applied in float64
    weights = model.get_weights()
    for kernel, bias in zip(weights[::2], weights[1::2], strict=True):
        exact = exact @ kernel.astype(np.float64) + bias.astype(np.float64)
    want = call_with_deep_stack(lambda: model.predict(x, verbose=0))
    (got,) = tfjs.predict(out, {"x": x}, kind="graph", backend="cpu")
    # 1200 float32 multiply-adds in sequence: each rounds by <= 2^-24 relative, so a
    # float32 run is within 1200 * 2 * 2^-24 * |y| (|y| <= 3 here), ~4.3e-4, of the
    # float64 one for any summation order: TF's and tfjs's alike.
    bound = LAYERS * 2 * 2.0**-24 * 3
    np.testing.assert_allclose(want, exact, rtol=0, atol=bound, err_msg="TF")
    np.testing.assert_allclose(got, exact, rtol=0, atol=bound, err_msg="tfjs")
