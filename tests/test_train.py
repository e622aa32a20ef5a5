"""cyconv._train, the compiled glue of a training step: fused optimisers and ReLU passes.

The fused paths are checked against the unfused NumPy composition they
replace. Equality is *bitwise* where the build has no fused multiply-adds in
the NumPy loops either (x86-64: NumPy's SSE/AVX ufunc loops round every
operation); elsewhere to one rounding.
"""
import platform

import numpy as np
import pytest

from cyconv.layers import (
    SGD,
    Adam,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    softmax_cross_entropy,
)

BITWISE = platform.machine().lower() in ("x86_64", "amd64")


def _assert_same(actual, desired):
    if BITWISE:
        np.testing.assert_array_equal(actual, desired)
    else:  # pragma: no cover - other architectures
        np.testing.assert_allclose(actual, desired, rtol=4 * np.finfo(desired.dtype).eps)


def _net(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return Sequential(Conv2D(2, 8, 3, padding=1, dtype=dtype, seed=rng), ReLU(), MaxPool2D(2),
                      Conv2D(8, 8, 3, padding=1, dtype=dtype, seed=rng), ReLU(), Flatten(),
                      Dense(4 * 4 * 8, 20, dtype=dtype, seed=rng), ReLU(),
                      Dense(20, 5, dtype=dtype, seed=rng))


def _train(make_opt, dtype, num_threads, fused, steps=4):
    model = _net(dtype)
    model.num_threads = num_threads
    opt = make_opt(model, fused=fused)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = rng.standard_normal((6, 8, 8, 2)).astype(dtype)
        y = rng.integers(0, 5, size=6)
        _, dlogits = softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        opt.step()
    return model.parameters()


OPTIMISERS = {
    "sgd": lambda model, fused: SGD(model, lr=0.05, fused=fused),
    "sgd-momentum": lambda model, fused: SGD(model, lr=0.05, momentum=0.9, fused=fused),
    "adam": lambda model, fused: Adam(model, lr=3e-3, fused=fused),
    "adam-betas": lambda model, fused: Adam(model, lr=1e-2, betas=(0.5, 0.9), eps=1e-4,
                                            fused=fused),
}


@pytest.mark.parametrize("name", OPTIMISERS)
def test_fused_optimiser_equals_the_numpy_composition(name, dtype):
    fused = _train(OPTIMISERS[name], dtype, 1, fused=True)
    numpy = _train(OPTIMISERS[name], dtype, 1, fused=False)
    for k in numpy:
        assert fused[k].dtype == numpy[k].dtype == dtype
        _assert_same(fused[k], numpy[k])


@pytest.mark.parametrize("name", OPTIMISERS)
def test_fused_optimiser_is_bitwise_identical_across_thread_counts(name, dtype):
    one = _train(OPTIMISERS[name], dtype, 1, fused=True)
    for n in (2, 3, 8):
        other = _train(OPTIMISERS[name], dtype, n, fused=True)
        for k in one:
            np.testing.assert_array_equal(other[k], one[k], err_msg=f"{k}, {n} threads")


def _big_layer(dtype):
    # 3 * 8192 + 5 elements in w: several chunks and a ragged last one.
    layer = Dense(3 * 8192 + 5, 1, dtype=dtype, seed=0)
    rng = np.random.default_rng(2)
    layer.grads["w"][:] = rng.standard_normal(layer.grads["w"].shape)
    layer.grads["b"][:] = rng.standard_normal(1)
    return layer


@pytest.mark.parametrize("make", [lambda m, f: SGD(m, lr=0.1, momentum=0.5, fused=f),
                                  lambda m, f: Adam(m, lr=0.1, fused=f)], ids=["sgd", "adam"])
def test_fused_update_covers_every_element_of_multi_chunk_arrays(make, dtype):
    layers = [_big_layer(dtype) for _ in range(2)]
    opts = [make(layers[0], True), make(layers[1], False)]
    for _ in range(3):
        for opt in opts:
            opt.step()
    for k in layers[0].params:
        assert not np.array_equal(layers[0].params[k], _big_layer(dtype).params[k])
        _assert_same(layers[0].params[k], layers[1].params[k])


def test_sgd_first_step_without_momentum_is_p_minus_lr_g_exactly():
    layer = _big_layer(np.float32)
    p0 = {k: v.copy() for k, v in layer.params.items()}
    SGD(layer, lr=0.25).step()
    for k, p in layer.params.items():
        np.testing.assert_array_equal(p, p0[k] - np.float32(0.25) * layer.grads[k])


def test_parameters_the_kernel_cannot_take_fall_back_to_numpy_with_the_same_result():
    # A Fortran-ordered weight, a read-only gradient view and mixed dtypes in
    # one model: the fused step updates what it can and NumPy the rest.
    def model():
        rng = np.random.default_rng(3)
        a, b = Dense(4, 3, seed=rng), Dense(3, 2, dtype=np.float64, seed=rng)
        a.params["w"] = np.asfortranarray(a.params["w"])
        for layer in (a, b):
            for k, g in layer.grads.items():
                g[...] = rng.standard_normal(g.shape)
        return Sequential(a, b)

    m1, m2 = model(), model()
    o1, o2 = Adam(m1, lr=0.1, fused=True), Adam(m2, lr=0.1, fused=False)
    for _ in range(3):
        o1.step()
        o2.step()
    for k, p in m1.parameters().items():
        assert p.dtype == m2.parameters()[k].dtype
        _assert_same(p, m2.parameters()[k])
    assert not m1[0].params["w"].flags.c_contiguous


def test_fused_step_follows_parameter_arrays_replaced_between_steps():
    layer = Dense(5, 4, seed=0)
    layer.grads["w"][:] = 1
    opt = SGD(layer, lr=0.5)
    opt.step()
    layer.params["w"] = np.zeros((5, 4), dtype=np.float32)  # e.g. a reload
    opt.step()
    np.testing.assert_array_equal(layer.params["w"], np.full((5, 4), -0.5, np.float32))


def test_optimiser_num_threads_must_be_an_int_at_least_1():
    with pytest.raises(ValueError, match="num_threads"):
        SGD(Dense(2, 2), num_threads=0)


@pytest.mark.parametrize("shape", [(3, 5), (2, 128, 129, 1), (0, 4)],
                         ids=["tiny", "chunks", "empty"])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_relu_layer_equals_the_numpy_composition(shape, num_threads, dtype):
    # The compiled passes against the mask-and-where code they replace.
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    if x.size:
        x.flat[::7] = 0.0
        x.flat[3] = np.nan
    dout = rng.standard_normal(shape).astype(dtype)
    layer = ReLU(num_threads=num_threads)
    y = layer.forward(x)
    dx = layer.backward(dout)
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(y, np.maximum(x, 0))  # NaN stays NaN
    np.testing.assert_array_equal(dx, np.where(x > 0, dout, np.zeros((), dtype)))


@pytest.mark.parametrize("case", ["fortran", "strided", "other-dtype-dout", "float16"])
def test_relu_layer_takes_the_numpy_route_for_other_layouts_with_the_same_values(case):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 5, 3))
    dout = rng.standard_normal((4, 6, 5, 3))
    if case == "fortran":
        x, dout = np.asfortranarray(x), np.asfortranarray(dout)
    elif case == "strided":
        x, dout = x[:, ::2], dout[:, ::2]
    elif case == "other-dtype-dout":
        x = x.astype(np.float32)
    else:
        x, dout = x.astype(np.float16), dout.astype(np.float16)
    layer = ReLU()
    y = layer.forward(x)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    want = np.where(x > 0, dout, np.zeros((), np.result_type(dout)))
    assert dx.dtype == want.dtype
    np.testing.assert_array_equal(dx, want)


def test_relu_forward_does_not_modify_its_input_and_backward_not_dout():
    x = np.random.default_rng(6).standard_normal((64, 1024)).astype(np.float32)
    dout = np.ones_like(x)
    x0, d0 = x.copy(), dout.copy()
    layer = ReLU()
    layer.backward(layer.forward(x) * 0 + dout)
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, d0)


@pytest.mark.parametrize("name", ["lenet5", "conv4"])
def test_whole_training_steps_are_bitwise_identical_across_thread_counts(name):
    # Forward, loss, backward without dx, fused SGD: the step of the training benchmark.
    from cyconv import bench_train

    params = []
    for n in (1, 2, 3):
        model = bench_train.cyconv_model(name, "float32", num_threads=n)
        x, y = bench_train.make_batch(name, 5, "float32")
        step = bench_train.cyconv_step(model, x, y)
        losses = [step() for _ in range(3)]
        params.append((losses, model.parameters()))
    for losses, p in params[1:]:
        assert losses == params[0][0]
        for k in p:
            np.testing.assert_array_equal(p[k], params[0][1][k], err_msg=k)
