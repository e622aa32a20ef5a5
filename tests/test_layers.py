"""cyconv.layers: gradients against finite differences, shapes, modes, saving, optimisers."""
import functools

import numpy as np
import pytest

import cyconv
from cyconv import reference
from cyconv.layers import (
    SGD,
    Adam,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    Tanh,
    glorot_uniform,
    he_normal,
    softmax,
    softmax_cross_entropy,
)


def _small_net(pool="max", activation="relu", conv=(1, 1), dtype=np.float64, seed=0):
    # conv -> activation -> pool -> flatten -> dense, for (m, 6, 6, 2) inputs.
    stride, padding = conv
    rng = np.random.default_rng(seed)
    c = Conv2D(2, 3, 3, stride=stride, padding=padding, dtype=dtype, seed=rng)
    c.params["b"][:] = rng.standard_normal(3) * 0.1  # non-zero bias: test db too
    act = ReLU() if activation == "relu" else Tanh()
    pool_layer = MaxPool2D(2, stride=1) if pool == "max" else AvgPool2D(2, stride=1)
    n_out = 6 // stride
    dense = Dense((n_out - 1) ** 2 * 3, 4, dtype=dtype, seed=rng)
    model = Sequential(c, act, pool_layer, Flatten(), dense)
    model.num_threads = 1  # tiny arrays, hundreds of calls: no thread start-ups
    return model


def _loss(model, x, y):
    return softmax_cross_entropy(model.forward(x), y)[0]


@pytest.mark.parametrize("conv", [(1, 1), (2, "same")], ids=["s1-p1", "s2-same"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_whole_network_gradients_match_finite_differences_float64(pool, activation, conv):
    rng = np.random.default_rng(42)
    model = _small_net(pool, activation, conv)
    x = rng.standard_normal((2, 6, 6, 2))
    y = np.array([1, 3])
    _, dlogits = softmax_cross_entropy(model.forward(x), y)
    dx = model.backward(dlogits)
    grads = {k: v.copy() for k, v in model.gradients().items()}
    grads["x"] = dx
    arrays = dict(model.parameters(), x=x)
    assert set(grads) == {"0.w", "0.b", "4.w", "4.b", "x"}
    eps = 1e-6
    for name, a in arrays.items():
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            saved = a[i]
            a[i] = saved + eps
            plus = _loss(model, x, y)
            a[i] = saved - eps
            minus = _loss(model, x, y)
            a[i] = saved
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


def test_softmax_cross_entropy_gradient_matches_finite_differences_for_one_hot_targets():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 5))
    target = np.eye(5)[[0, 4, 2]]
    loss, dlogits = softmax_cross_entropy(logits, target)
    assert loss == pytest.approx(softmax_cross_entropy(logits, np.array([0, 4, 2]))[0])
    eps = 1e-6
    numeric = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[i] = eps
        numeric[i] = (softmax_cross_entropy(logits + step, target)[0]
                      - softmax_cross_entropy(logits - step, target)[0]) / (2 * eps)
    np.testing.assert_allclose(dlogits, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_finite_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 3e4, 0.0]], dtype=dtype)
    loss, dlogits = softmax_cross_entropy(logits, np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(3e4 / 2)
    assert dlogits.dtype == dtype and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("y, error", [(np.array([0, 3]), ValueError),
                                      (np.array([0]), ValueError),
                                      (np.array([0.0, 1.0]), TypeError)])
def test_softmax_cross_entropy_rejects_bad_labels(y, error):
    with pytest.raises(error):
        softmax_cross_entropy(np.zeros((2, 3)), y)


@pytest.mark.parametrize("layer, x_shape, out_shape", [
    (Conv2D(3, 5, 3), (2, 8, 8, 3), (2, 6, 6, 5)),
    (Conv2D(3, 5, (3, 1), stride=2, padding="same"), (2, 8, 7, 3), (2, 4, 4, 5)),
    (MaxPool2D(2), (2, 8, 8, 3), (2, 4, 4, 3)),
    (MaxPool2D(3, stride=1, padding=1), (1, 5, 5, 2), (1, 5, 5, 2)),
    (AvgPool2D(2), (2, 8, 6, 3), (2, 4, 3, 3)),
    (AvgPool2D(2, padding=1, count_include_pad=False), (1, 3, 3, 1), (1, 2, 2, 1)),
    (ReLU(), (2, 3, 4), (2, 3, 4)),
    (Tanh(), (2, 3, 4), (2, 3, 4)),
    (Flatten(), (2, 5, 5, 16), (2, 400)),
    (Dense(7, 4), (3, 7), (3, 4)),
], ids=lambda v: repr(v) if not isinstance(v, tuple) else str(v).replace(" ", ""))
def test_layer_forward_and_backward_shapes_and_float32(layer, x_shape, out_shape):
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    out = layer.forward(x)
    assert out.shape == out_shape and out.dtype == np.float32
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x_shape and dx.dtype == np.float32


@pytest.mark.parametrize("layer, names", [
    (Conv2D(3, 5, (3, 2)), {"w": (3, 2, 3, 5), "b": (5,)}),
    (Conv2D(3, 5, 3, bias=False), {"w": (3, 3, 3, 5)}),
    (Dense(7, 4), {"w": (7, 4), "b": (4,)}),
    (Dense(7, 4, bias=False), {"w": (7, 4)}),
    (MaxPool2D(2), {}),
    (ReLU(), {}),
])
def test_params_and_grads_have_the_same_names_and_shapes(layer, names):
    assert {k: v.shape for k, v in layer.params.items()} == names
    assert {k: v.shape for k, v in layer.grads.items()} == names
    assert all(v.dtype == np.float32 for v in layer.params.values())


def test_backward_overwrites_grads_in_place_instead_of_accumulating():
    rng = np.random.default_rng(0)
    model = _small_net(dtype=np.float32)
    x, y = rng.standard_normal((2, 6, 6, 2)).astype(np.float32), np.array([0, 1])
    held = model.gradients()
    for _ in range(2):
        model.backward(softmax_cross_entropy(model.forward(x), y)[1])
        once = {k: v.copy() for k, v in held.items()}
    for k, v in model.gradients().items():
        assert v is held[k]
        np.testing.assert_array_equal(v, once[k])


def _all_layer_kinds(seed=0):
    model = Sequential(Conv2D(1, 4, 3, padding=1, seed=seed), ReLU(), MaxPool2D(2),
                       Conv2D(4, 4, 3, padding=1, seed=seed), Tanh(), AvgPool2D(2),
                       Flatten(), Dense(16, 3, seed=seed))
    model.num_threads = 1
    return model


def test_eval_mode_forward_keeps_no_cache_and_backward_raises():
    model = _all_layer_kinds().eval()
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    out = model.forward(x)
    assert not model.training
    assert all(layer.cache is None for layer in model)
    with pytest.raises(RuntimeError, match="training mode"):
        model.backward(np.ones_like(out))


def test_training_mode_keeps_only_what_backward_needs_and_backward_releases_it():
    model = _all_layer_kinds()
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    conv, relu, maxpool, _, tanh, avgpool, flatten, dense = model
    maxpool_input = []
    pool_forward = maxpool.forward
    maxpool.forward = lambda a: maxpool_input.append(a) or pool_forward(a)
    out = model.forward(x)
    assert conv.cache is x
    assert relu.cache is maxpool_input[0]  # its output, which the pool reads: no mask
    stand_in, indices = maxpool.cache  # the argmax, not the input (a zero-stride stand-in)
    assert stand_in.shape == (2, 8, 8, 4) and stand_in.strides == (0, 0, 0, 0)
    assert indices.shape == (2, 4, 4, 4) and indices.dtype == np.int32
    assert tanh.cache.shape == (2, 4, 4, 4)
    assert avgpool.cache == (2, 4, 4, 4)  # a shape, not the input
    assert flatten.cache == (2, 2, 2, 4)
    assert dense.cache.shape == (2, 16)
    model.backward(np.ones_like(out))
    assert all(layer.cache is None for layer in model)


def test_switching_to_eval_drops_caches_of_an_unfinished_training_step():
    model = _all_layer_kinds()
    model.forward(np.ones((1, 8, 8, 1), dtype=np.float32))
    model.eval()
    assert all(layer.cache is None for layer in model)


def test_predict_runs_in_eval_mode_and_restores_the_mode():
    model = _all_layer_kinds()
    x = np.random.default_rng(0).standard_normal((5, 8, 8, 1)).astype(np.float32)
    labels = model.predict(x, batch_size=2)
    assert labels.shape == (5,)
    np.testing.assert_array_equal(labels, model.forward(x).argmax(axis=1))
    model.train()
    model.predict(x)
    assert model.training and all(layer.cache is None for layer in model)


@pytest.mark.parametrize("make", [
    lambda backend: Conv2D(3, 4, 3, stride=2, padding="same", seed=0, backend=backend),
    lambda backend: MaxPool2D(3, stride=2, padding=1, backend=backend),
    lambda backend: AvgPool2D(3, stride=2, padding=1, count_include_pad=False, backend=backend),
], ids=["conv", "maxpool", "avgpool"])
def test_reference_backend_gives_the_same_layer_results(make):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 7, 3))
    fast, slow = make(None), make(reference)
    assert fast.backend is cyconv
    out = fast.forward(x)
    np.testing.assert_allclose(out, slow.forward(x), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(fast.backward(dout), slow.backward(dout), rtol=1e-12, atol=1e-12)
    for k in fast.grads:
        np.testing.assert_allclose(fast.grads[k], slow.grads[k], rtol=1e-6)


def test_num_threads_reaches_every_kernel_and_relu_layer_and_changes_no_bit():
    model = _all_layer_kinds()
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype(np.float32)
    results = []
    for n in (1, 2):
        model.num_threads = n
        assert model.num_threads == n
        assert [layer.num_threads for layer in model if hasattr(layer, "num_threads")] == [n] * 5
        out = model.forward(x)
        dx = model.backward(np.ones_like(out))
        results.append((out, dx, model.gradients()["0.w"].copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_save_then_load_restores_parameters_and_outputs(tmp_path):
    path = tmp_path / "weights.npz"
    trained, fresh = _all_layer_kinds(seed=1), _all_layer_kinds(seed=2)
    trained.save(path)
    with np.load(path) as data:
        assert sorted(data.files) == ["0.b", "0.w", "3.b", "3.w", "7.b", "7.w"]
    held = fresh.parameters()
    fresh.load(path)
    for k, v in trained.parameters().items():
        np.testing.assert_array_equal(fresh.parameters()[k], v)
        assert fresh.parameters()[k] is held[k]  # loaded in place: optimisers stay valid
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(fresh.eval().forward(x), trained.eval().forward(x))


def test_load_rejects_other_shapes_and_other_names(tmp_path):
    path = tmp_path / "weights.npz"
    _all_layer_kinds().save(path)
    wider = Sequential(Conv2D(1, 5, 3, padding=1), ReLU(), MaxPool2D(2),
                       Conv2D(5, 4, 3, padding=1), Tanh(), AvgPool2D(2),
                       Flatten(), Dense(16, 3))
    with pytest.raises(ValueError, match="shapes"):
        wider.load(path)
    with pytest.raises(ValueError, match="names"):
        Sequential(Flatten(), Dense(64, 3)).load(path)


def _tiny_problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 6, 1)).astype(np.float32)
    y = (x[:, :3].sum(axis=(1, 2, 3)) > x[:, 3:].sum(axis=(1, 2, 3))).astype(np.int64)
    model = Sequential(Conv2D(1, 4, 3, seed=0), ReLU(), AvgPool2D(2), Flatten(),
                       Dense(16, 2, seed=1))
    model.num_threads = 1
    return model, x, y


@pytest.mark.parametrize("make_opt", [
    lambda m: SGD(m, lr=0.3),
    lambda m: SGD(m, lr=0.05, momentum=0.9),
    lambda m: Adam(m, lr=0.01),
], ids=["sgd", "sgd-momentum", "adam"])
def test_optimisers_reduce_the_loss_of_a_tiny_problem_updating_in_place(make_opt):
    model, x, y = _tiny_problem()
    opt = make_opt(model)
    held = model.parameters()
    before = _loss(model, x, y)
    for _ in range(30):
        model.backward(softmax_cross_entropy(model.forward(x), y)[1])
        opt.step()
    assert _loss(model, x, y) < 0.5 * before
    assert all(model.parameters()[k] is v for k, v in held.items())
    assert all(v.dtype == np.float32 for v in held.values())


def test_adam_first_step_moves_each_parameter_by_lr_against_its_gradient_sign():
    layer = Dense(3, 2, seed=0)
    w0 = layer.params["w"].copy()
    layer.grads["w"][:] = [[1, -2], [3, -4], [5, -6]]
    Adam(layer, lr=0.1).step()
    np.testing.assert_allclose(layer.params["w"] - w0, -0.1 * np.sign(layer.grads["w"]),
                               rtol=1e-5)


def test_seeded_layers_are_reproducible_and_initialisers_have_their_scale():
    assert np.array_equal(Conv2D(3, 8, 5, seed=7).params["w"], Conv2D(3, 8, 5, seed=7).params["w"])
    w = he_normal((200, 300), fan_in=200, seed=0, dtype=np.float64)
    assert w.std() == pytest.approx(np.sqrt(2 / 200), rel=0.02)
    g = glorot_uniform((200, 300), 200, 300, seed=0)
    limit = np.sqrt(6 / 500)
    assert g.dtype == np.float32 and np.abs(g).max() <= limit
    assert np.abs(g).max() > 0.99 * limit


@pytest.mark.parametrize("make, error", [
    (lambda: Conv2D(1, 2, 3, dtype=np.int32), TypeError),
    (lambda: Dense(3, 2, init="lecun"), ValueError),
    (lambda: Conv2D(0, 2, 3), ValueError),
    (lambda: Conv2D(1, 2, (3, 0)), ValueError),
    (lambda: Dense(2.5, 2), ValueError),
    (lambda: Sequential(Dense(2, 2), "relu"), TypeError),
    (lambda: SGD(Dense(2, 2), lr=0), ValueError),
    (lambda: SGD(Dense(2, 2), momentum=1.0), ValueError),
])
def test_bad_construction_arguments_raise(make, error):
    with pytest.raises(error):
        make()


@pytest.mark.parametrize("backend", [None, reference], ids=["cyconv", "reference"])
@pytest.mark.parametrize("first", ["relu-conv", "conv", "dense"])
def test_backward_without_input_grad_fills_the_same_grads_and_returns_none(first, backend):
    rng = np.random.default_rng(7)
    if first == "dense":
        make = lambda: Sequential(Flatten(), Dense(2 * 6 * 6, 5, dtype=np.float64, seed=1),  # noqa: E731
                                  ReLU(), Dense(5, 3, dtype=np.float64, seed=2))
    else:
        head = [ReLU()] if first == "relu-conv" else []
        make = lambda: Sequential(*head, Conv2D(2, 3, 3, dtype=np.float64, seed=1,  # noqa: E731
                                                backend=backend),
                                  ReLU(), Flatten(), Dense(3 * 4 * 4, 3, dtype=np.float64, seed=2))
    x = rng.standard_normal((4, 6, 6, 2))
    y = np.array([0, 1, 2, 1])
    models = [make(), make()]
    results = []
    for model, input_grad in zip(models, (True, False)):
        _, dlogits = softmax_cross_entropy(model.forward(x), y)
        results.append(model.backward(dlogits, input_grad=input_grad))
        assert all(layer.cache is None for layer in model)
    assert results[0].shape == x.shape and results[1] is None
    g0, g1 = models[0].gradients(), models[1].gradients()
    for k in g0:
        np.testing.assert_array_equal(g1[k], g0[k], err_msg=k)


def test_backward_without_input_grad_asks_the_first_conv_for_dw_and_db_only(monkeypatch):
    calls = []
    real = cyconv.conv2d_backward

    @functools.wraps(real)  # the real signature, with its grads option
    def spy(*args, **kwargs):
        calls.append(tuple(kwargs.get("grads", ("dx", "dw", "db"))))
        return real(*args, **kwargs)

    monkeypatch.setattr(cyconv, "conv2d_backward", spy)
    model = _all_layer_kinds()
    out = model.forward(np.ones((2, 8, 8, 1), dtype=np.float32))
    model.backward(np.ones_like(out), input_grad=False)
    assert calls == [("dx", "dw", "db"), ("dw", "db")]  # the second conv, then the first


def test_sequential_runs_conv_then_relu_fused_with_the_same_bits_and_gradients():
    from cyconv.layers import Conv2D, Flatten, Dense, MaxPool2D, ReLU, Sequential
    rng = np.random.default_rng(4)

    def model():
        return Sequential(Conv2D(3, 8, 3, padding=1, seed=1), ReLU(), MaxPool2D(2),
                          Flatten(), Dense(4 * 4 * 8, 5, seed=2))
    fused, plain = model(), model()
    x = rng.standard_normal((4, 8, 8, 3)).astype(np.float32)
    y = fused.forward(x)
    h = plain.layers[1].forward(plain.layers[0].forward(x))   # unfused, layer by layer
    for layer in plain.layers[2:]:
        h = layer.forward(h)
    np.testing.assert_array_equal(y, h)
    dout = rng.standard_normal(y.shape).astype(np.float32)
    fused.backward(dout)
    for layer in reversed(plain.layers):
        dout_p = layer.backward(dout if layer is plain.layers[-1] else dout_p)
    for lf, lp in zip(fused.layers, plain.layers):
        for k in lf.grads:
            np.testing.assert_array_equal(lf.grads[k], lp.grads[k])
