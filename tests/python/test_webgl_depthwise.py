"""webgl's packed depthwise convolution: its seeded sums, emulated and observed.

``webgl_depthwise`` emulates tfjs-backend-webgl's ``DepthwiseConvPacked2DProgram`` (sums
start at 1e-15) so the reach corpus can bound the absolute error that seed adds
(``tolerances.webgl_tolerance``). Here: the emulation against hand-computed roundings
and against TensorFlow's own depthwise convolution, and, in headless Chromium, that
tfjs 4.22 on webgl really computes those seeded sums -- a model whose activations are
~1e-19 misses the plain webgl bound, lands on the emulation, and passes the bound with
the seed's term. If tfjs drops the seed, the first browser assertion fails and the term
is stale.
"""

from __future__ import annotations

import numpy as np
import pytest
import tolerances
import webgl_depthwise as wd

ULP_AT_SEED = 2.0**-73  # float32 spacing in [2**-50, 2**-49), where 1e-15 lies


def test_seed_is_float32_1e_15_in_its_binade() -> None:
    assert 2.0**-50 <= float(wd.SEED) < 2.0**-49
    assert float(np.spacing(wd.SEED)) == ULP_AT_SEED


def test_seeded_sum_rounds_to_the_grid_at_the_seed() -> None:
    """A 1x1 kernel of 1: the output is fl(fl(seed + x) - seed), computed by hand."""
    import tensorflow as tf

    x = np.array([4e-23, 1e-22, 3e-22, 1.0, -2.5], np.float32).reshape(1, 1, 5, 1)
    got = wd.seeded_depthwise(tf.constant(x), tf.ones((1, 1, 1)), (1, 1), "valid", (1, 1)).numpy().ravel()
    want = [
        0.0,  # below half a grid step: absorbed by the seed
        ULP_AT_SEED,  # 1e-22 is 0.94 steps: one step
        3 * ULP_AT_SEED,  # 2.83 steps: three
        1.0,  # next to 1, the seed is below half an ulp: exact
        -2.5,
    ]
    assert got.tolist() == [np.float32(w) for w in want]


@pytest.mark.parametrize(
    ("strides", "padding", "dilation", "side"),
    [
        ((1, 1), "same", (1, 1), 9),
        ((2, 2), "same", (1, 1), 8),
        ((2, 2), "valid", (1, 1), 9),
        ((1, 1), "valid", (1, 1), 5),
        ((1, 1), "same", (2, 2), 7),
    ],
)
def test_seeded_depthwise_is_a_depthwise_convolution(strides, padding, dilation, side) -> None:
    """O(1) values: the seed is lost in rounding, so the emulation is TF's depthwise conv
    up to float32 rounding of a 9-term sum (|error| <= 10 * 2**-24 * sum |x w|, plus
    the seed's own 2e-15)."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, side, side, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3)).astype(np.float32)
    got = wd.seeded_depthwise(tf.constant(x), tf.constant(w), strides, padding, dilation).numpy()
    want = tf.nn.depthwise_conv2d(
        x.astype(np.float64),
        w[..., None].astype(np.float64),
        (1, *strides, 1),
        padding.upper(),
        dilations=dilation,
    ).numpy()
    magnitude = tf.nn.depthwise_conv2d(
        np.abs(x).astype(np.float64),
        np.abs(w)[..., None].astype(np.float64),
        (1, *strides, 1),
        padding.upper(),
        dilations=dilation,
    ).numpy()
    assert got.shape == want.shape
    assert np.all(np.abs(got - want) <= 10 * 2.0**-24 * magnitude + 2e-15)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """DepthwiseConv2D on activations ~1e-19, then a Dense that scales them to O(1): the
    shape of a random-weight MobileNet's last blocks, small enough to reason about."""
    import coverage_corpus as cc
    import tf_keras

    from tfjsconv import api

    rng = np.random.default_rng(2026_12_07)
    inp = tf_keras.Input((6, 6, 4), name="x")
    h = tf_keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(inp)
    out = tf_keras.layers.Dense(2, name="head")(tf_keras.layers.Flatten()(h))
    model = tf_keras.Model(inp, out)
    dw, head, bias = model.get_weights()
    model.set_weights(
        [
            rng.normal(0, 0.5, dw.shape).astype(np.float32),
            (rng.normal(0, 1, head.shape) * 1e18).astype(np.float32),
            bias,
        ]
    )
    x = (rng.uniform(-1, 1, (3, 6, 6, 4)) * 1e-19).astype(np.float32)
    root = tmp_path_factory.mktemp("webgl_dw")
    model.save(root / "dw.h5")
    graph = api.convert_keras(str(root / "dw.h5"), str(root / "graph"), output_format="tfjs_graph_model")
    ref32 = cc.predict(model, [x])
    tol, how = tolerances.tolerance(ref32, cc.float64_predictions(tf_keras, model, [x]))
    return {
        "model": model,
        "x": x,
        "graph": graph,
        "ref32": ref32,
        "tol": tol,
        "how": how,
        "deviation": wd.packed_depthwise_deviation(model, [x]),
    }


def test_emulation_finds_the_layer_and_moves_the_outputs(tiny) -> None:
    assert [layer.name for layer in wd.packed_layers(tiny["model"])] == ["dw"]
    # Outputs ~1 built from sums ~1e-19 rounded on a 1.1e-22 grid: ~1e-3 relative.
    assert tiny["deviation"] > 100 * tiny["tol"]


@pytest.mark.tfjs
@pytest.mark.browser
def test_tfjs_webgl_computes_the_seeded_sums(tfjs_backends, tiny) -> None:
    import coverage_corpus as cc

    (got,) = tfjs_backends.run_model(tiny["graph"], "graph", {"x": tiny["x"]}, "webgl")
    plain, _ = tolerances.webgl_tolerance(tiny["tol"], tiny["how"])
    diff = tolerances.max_diff(got, tiny["ref32"][0])
    assert diff > plain, f"webgl is within the plain bound ({diff:.3g} <= {plain:.3g}): is the seed gone?"
    with wd.seeded_sums(wd.packed_layers(tiny["model"])):
        (emulated,) = cc.predict(tiny["model"], [tiny["x"]])
    # What is left once the seed is emulated is ordinary webgl rounding.
    assert tolerances.max_diff(got, emulated) <= plain
    bound, how = tolerances.webgl_tolerance(tiny["tol"], tiny["how"], tiny["deviation"])
    assert diff <= bound, how
