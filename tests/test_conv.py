"""cyconv.conv2d / conv2d_backward against cyconv.reference, plus the contract's edge cases."""
import numpy as np
import pytest
from conftest import assert_close, layouts

import cyconv
from cyconv import reference

# (x shape, w shape, stride, padding): odd sizes, rectangular kernels, stride > 1,
# every padding form (asymmetric, "same" with even kernels), m = 1, C = 1.
CASES = [
    ((2, 7, 9, 3), (3, 3, 3, 4), 1, 0),
    ((1, 5, 5, 1), (3, 3, 1, 1), 1, 1),
    ((3, 8, 6, 2), (2, 3, 2, 5), 2, (1, 2)),
    ((2, 9, 7, 4), (4, 2, 4, 3), (2, 3), ((2, 1), (0, 3))),
    ((2, 6, 6, 3), (4, 4, 3, 2), 1, "same"),
    ((2, 7, 8, 3), (2, 2, 3, 4), 2, "same"),
    ((1, 11, 10, 2), (5, 3, 2, 3), (3, 2), "same"),
    ((2, 6, 5, 2), (3, 3, 2, 2), 2, "valid"),
    ((1, 1, 1, 3), (1, 1, 3, 2), 1, 0),
    ((1, 3, 3, 2), (3, 3, 2, 1), 1, 2),  # padding on every side wider than half the kernel
    ((10, 5, 7, 4), (3, 3, 4, 8), 2, 1),  # the course's shape
]
IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in CASES]


def _data(case, dtype, seed=0):
    x_shape, w_shape, _, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[3]).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_matches_reference(case, dtype):
    x, w, b = _data(case, dtype)
    _, _, stride, padding = case
    z = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    assert z.flags.c_contiguous
    assert_close(z, reference.conv2d(x, w, b, stride=stride, padding=padding), dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_backward_matches_reference(case, dtype):
    x, w, _ = _data(case, dtype)
    _, _, stride, padding = case
    z = reference.conv2d(x, w, stride=stride, padding=padding)
    dz = np.random.default_rng(1).standard_normal(z.shape).astype(dtype)
    got = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    want = reference.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert g.shape == r.shape, name
        assert_close(g, r, dtype)


def test_conv2d_reproduces_the_notes_worked_windows():
    # The notes' vertical-edge filter on two 3x3 windows gives -18 and 9.
    windows = np.array([[[3, 4, 5], [1, 0, 8], [2, 3, 4]],
                        [[2, 7, 3], [5, 6, 1], [4, 4, 2]]], dtype=float)[..., None]
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float)[:, :, None, None]
    z = cyconv.conv2d(windows, sobel)
    assert z.shape == (2, 1, 1, 1)
    assert z.ravel().tolist() == [-18.0, 9.0]


def test_conv2d_same_padding_keeps_ceil_n_over_s():
    x = np.ones((1, 7, 8, 1))
    for f in (1, 2, 3, 4, 5):
        for s in (1, 2, 3):
            z = cyconv.conv2d(x, np.ones((f, f, 1, 1)), stride=s, padding="same")
            assert z.shape[1:3] == (-(-7 // s), -(-8 // s)), (f, s)


def test_conv2d_accepts_bias_of_the_notes_shape():
    x, w, b = _data(CASES[2], np.float64)
    z1 = cyconv.conv2d(x, w, b, stride=2, padding=(1, 2))
    z2 = cyconv.conv2d(x, w, b.reshape(1, 1, 1, -1), stride=2, padding=(1, 2))
    np.testing.assert_array_equal(z1, z2)


@pytest.mark.parametrize("x_dtype, w_dtype, expected", [
    (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float64),
    (np.float64, np.float32, np.float64),
    (np.int32, np.float32, np.float64),
    (np.int64, np.int64, np.float64),
    (np.bool_, np.float32, np.float64),
    (np.float16, np.float32, np.float32),
])
def test_conv2d_result_dtype_follows_numpy_promotion(x_dtype, w_dtype, expected):
    x = np.ones((1, 4, 4, 2), dtype=x_dtype)
    w = np.ones((3, 3, 2, 2), dtype=w_dtype)
    z = cyconv.conv2d(x, w)
    assert z.dtype == expected
    np.testing.assert_array_equal(z, np.full((1, 2, 2, 2), 18.0))
    assert all(g.dtype == expected for g in cyconv.conv2d_backward(z, x, w))


def test_conv2d_accepts_every_memory_layout_and_modifies_nothing():
    case = CASES[3]
    x, w, b = _data(case, np.float64)
    _, _, stride, padding = case
    want = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    dz = np.random.default_rng(2).standard_normal(want.shape)
    want_grads = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    for (name, xl), (_, wl), (_, dzl) in zip(layouts(x), layouts(w), layouts(dz)):
        copies = [a.copy() for a in (xl, wl, dzl)]
        got = cyconv.conv2d(xl, wl, b, stride=stride, padding=padding)
        np.testing.assert_array_equal(got, want, err_msg=name)
        for g, r in zip(cyconv.conv2d_backward(dzl, xl, wl, stride=stride, padding=padding),
                        want_grads):
            np.testing.assert_array_equal(g, r, err_msg=name)
        for a, c in zip((xl, wl, dzl), copies):
            np.testing.assert_array_equal(a, c, err_msg=name)


def test_conv2d_writes_into_out():
    x, w, b = _data(CASES[0], np.float32)
    out = np.full((2, 5, 7, 4), np.nan, dtype=np.float32)
    z = cyconv.conv2d(x, w, b, out=out)
    assert z is out
    np.testing.assert_array_equal(out, cyconv.conv2d(x, w, b))


@pytest.mark.parametrize("out, message", [
    (np.empty((2, 5, 7, 3), np.float32), "out must have shape"),
    (np.empty((2, 5, 7, 4), np.float64), "out must have shape"),
    (np.empty((2, 5, 7, 4), np.float32, order="F"), "C-contiguous"),
    ([[0.0]], "out must be a NumPy array"),
])
def test_conv2d_rejects_bad_out(out, message):
    x, w, _ = _data(CASES[0], np.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        cyconv.conv2d(x, w, out=out)


def test_conv2d_rejects_out_aliasing_its_input():
    x = np.ones((1, 4, 4, 2))
    with pytest.raises(ValueError, match="share memory with the input x"):
        cyconv.conv2d(x, np.ones((1, 1, 2, 2)), out=x)


BAD_CONV = [
    (dict(x=np.ones((4, 4, 2))), ValueError, "x must be 4-D"),
    (dict(w=np.ones((3, 3, 2))), ValueError, "w must be 4-D"),
    (dict(w=np.ones((3, 3, 5, 2))), ValueError, "input channels"),
    (dict(w=np.ones((7, 3, 2, 2))), ValueError, "height .*6 < window 7"),
    (dict(w=np.ones((3, 9, 2, 2)), padding=1), ValueError, "width .*8 < window 9"),
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(stride=(1, -2)), ValueError, "stride must be >= 1"),
    (dict(stride=1.5), TypeError, "stride must be an int"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding=((0, 1), (1, -1))), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "padding must be 'valid' or 'same'"),
    (dict(padding=(1, 2, 3)), TypeError, "padding must be"),
    (dict(b=np.ones(3)), ValueError, "b must have shape"),
    (dict(x=np.ones((1, 6, 6, 2), dtype=complex)), TypeError, "x must hold real numbers"),
    (dict(w=np.ones((3, 3, 2, 2), dtype=object)), TypeError, "w must hold real numbers"),
    (dict(x="image"), TypeError, "x must hold real numbers"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(num_threads=1.0), TypeError, "num_threads"),
]


@pytest.mark.parametrize("override, error, message", BAD_CONV,
                         ids=[m for _, _, m in BAD_CONV])
def test_conv2d_rejects_bad_arguments_naming_them(override, error, message):
    args = dict(x=np.ones((1, 6, 6, 2)), w=np.ones((3, 3, 2, 2)), b=None, stride=1, padding=0)
    args.update(override)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(error, match=message):
        cyconv.conv2d(x, w, b, **args)


def test_conv2d_backward_rejects_dz_of_the_wrong_shape():
    x, w = np.ones((1, 6, 6, 2)), np.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match=r"dz must have the forward output's shape \(1, 4, 4, 2\)"):
        cyconv.conv2d_backward(np.ones((1, 4, 4, 3)), x, w)
    with pytest.raises(TypeError, match="dz must hold real numbers"):
        cyconv.conv2d_backward(np.ones((1, 4, 4, 2), dtype=complex), x, w)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[6]], ids=[IDS[0], IDS[3], IDS[6]])
def test_conv2d_results_are_bitwise_identical_across_thread_counts(case):
    x, w, b = _data(case, np.float32)
    x = np.concatenate([x] * 5)  # more rows than threads and dw chunks
    _, _, stride, padding = case
    z = [cyconv.conv2d(x, w, b, stride=stride, padding=padding, num_threads=n) for n in (1, 2, 3)]
    dz = np.random.default_rng(3).standard_normal(z[0].shape).astype(np.float32)
    grads = [cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding, num_threads=n)
             for n in (1, 2, 3)]
    for n in (1, 2):
        np.testing.assert_array_equal(z[n], z[0])
        for g, g0 in zip(grads[n], grads[0]):
            np.testing.assert_array_equal(g, g0)


def test_conv2d_empty_batch_gives_empty_result():
    z = cyconv.conv2d(np.ones((0, 5, 5, 2)), np.ones((3, 3, 2, 4)))
    assert z.shape == (0, 3, 3, 4)
    dx, dw, db = cyconv.conv2d_backward(np.ones((0, 3, 3, 4)), np.ones((0, 5, 5, 2)),
                                        np.ones((3, 3, 2, 4)))
    assert dx.shape == (0, 5, 5, 2)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


def test_conv2d_zero_input_channels_gives_the_bias():
    z = cyconv.conv2d(np.ones((2, 4, 4, 0)), np.ones((3, 3, 0, 2)), np.array([1.5, -2.0]))
    assert z.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(z[..., 0], 1.5)
    np.testing.assert_array_equal(z[..., 1], -2.0)


@pytest.mark.parametrize("grads", [("dx",), ("dw",), ("db",), ("dw", "db"), "dx"])
def test_conv2d_backward_computes_only_the_requested_gradients(grads):
    x, w, _ = _data(CASES[2], np.float64)
    z = cyconv.conv2d(x, w, stride=2, padding=(1, 2))
    dz = np.random.default_rng(4).standard_normal(z.shape)
    full = cyconv.conv2d_backward(dz, x, w, stride=2, padding=(1, 2))
    part = cyconv.conv2d_backward(dz, x, w, stride=2, padding=(1, 2), grads=grads)
    wanted = {grads} if isinstance(grads, str) else set(grads)
    for name, p, f in zip(("dx", "dw", "db"), part, full):
        if name in wanted:
            np.testing.assert_allclose(p, f, rtol=1e-13, atol=1e-13)
        else:
            assert p is None


def test_conv2d_backward_rejects_unknown_gradient_names():
    x, w = np.ones((1, 6, 6, 2)), np.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="grads may only name"):
        cyconv.conv2d_backward(np.ones((1, 4, 4, 2)), x, w, grads=("dw", "dbias"))


# The fast path in cyconv.conv (plain C-contiguous arrays of one float dtype,
# int stride/padding) must agree bitwise with the full checks it skips.
FAST_CASES = [c for c in CASES if isinstance(c[2], int) and isinstance(c[3], int)]
FAST_IDS = [IDS[CASES.index(c)] for c in FAST_CASES]


def _forward_and_backward(x, w, b, dz, **kwargs):
    return (cyconv.conv2d(x, w, b, **kwargs),) + cyconv.conv2d_backward(dz, x, w, **kwargs)


def _assert_same_results(got, want):
    for g, r in zip(got, want):
        assert g.dtype == r.dtype and g.shape == r.shape and g.flags.c_contiguous
        np.testing.assert_array_equal(g, r)


@pytest.mark.parametrize("case", FAST_CASES, ids=FAST_IDS)
@pytest.mark.parametrize("num_threads", [None, 1, 2])
def test_conv2d_fast_path_matches_the_checked_path(case, dtype, num_threads, monkeypatch):
    from cyconv import conv
    x, w, b = _data(case, dtype)
    _, _, s, p = case
    dz = np.random.default_rng(5).standard_normal(
        cyconv.conv2d(x, w, stride=s, padding=p).shape).astype(dtype)
    assert conv._fast_conv2d(x, w, b, s, p, None, num_threads) is not None
    assert conv._fast_conv2d_backward(dz, x, w, s, p, num_threads, conv._GRADS) is not None
    fast = _forward_and_backward(x, w, b, dz, stride=s, padding=p, num_threads=num_threads)
    fast_no_bias = cyconv.conv2d(x, w, stride=s, padding=p, num_threads=num_threads)
    monkeypatch.setattr(conv, "_fast_conv2d", lambda *args: None)
    monkeypatch.setattr(conv, "_fast_conv2d_backward", lambda *args: None)
    _assert_same_results(fast, _forward_and_backward(x, w, b, dz, stride=s, padding=p,
                                                     num_threads=num_threads))
    _assert_same_results([fast_no_bias], [cyconv.conv2d(x, w, stride=s, padding=p,
                                                        num_threads=num_threads)])


@pytest.mark.parametrize("grads", [("dx",), ("dw",), ("db",), ("dw", "db"), ("db", "dx")])
def test_conv2d_backward_fast_path_with_grads_matches_the_checked_path(grads, dtype, monkeypatch):
    from cyconv import conv
    x, w, _ = _data(CASES[0], dtype)
    dz = np.random.default_rng(8).standard_normal(cyconv.conv2d(x, w).shape).astype(dtype)
    assert conv._fast_conv2d_backward(dz, x, w, 1, 0, 1, grads) is not None
    fast = cyconv.conv2d_backward(dz, x, w, num_threads=1, grads=grads)
    monkeypatch.setattr(conv, "_fast_conv2d_backward", lambda *args: None)
    slow = cyconv.conv2d_backward(dz, x, w, num_threads=1, grads=grads)
    for name, f, r in zip(("dx", "dw", "db"), fast, slow):
        assert (f is None) == (r is None) == (name not in grads)
        if f is not None:
            _assert_same_results([f], [r])


def test_conv2d_fast_path_agrees_with_the_other_argument_forms(dtype):
    # Each variant below takes the checked path; the first call takes the fast one.
    x, w, b = _data(CASES[-1], dtype)
    dz = np.random.default_rng(6).standard_normal((10, 3, 4, 8)).astype(dtype)
    want = _forward_and_backward(x, w, b, dz, stride=2, padding=1, num_threads=1)
    swapped = np.dtype(dtype).newbyteorder()
    variants = [
        (x, w, b, dz, dict(stride=(2, 2), padding=1)),
        (x, w, b, dz, dict(stride=2, padding=(1, 1))),
        (x, w, b, dz, dict(stride=np.int64(2), padding=((1, 1), (1, 1)))),
        (x, w, b, dz, dict(stride=2, padding=1, num_threads=np.int32(2))),
        (np.asfortranarray(x), np.asfortranarray(w), b, np.asfortranarray(dz),
         dict(stride=2, padding=1)),
        (x.astype(swapped), w.astype(swapped), b.astype(swapped), dz.astype(swapped),
         dict(stride=2, padding=1)),
        (x, w, b.reshape(1, 1, 1, -1), dz, dict(stride=2, padding=1)),
        (x, w, np.repeat(b, 2)[::2], dz, dict(stride=2, padding=1)),
        (x, w, list(b), dz, dict(stride=2, padding=1)),
    ]
    for xv, wv, bv, dzv, kwargs in variants:
        _assert_same_results(_forward_and_backward(xv, wv, bv, dzv, **kwargs), want)
    zero_bias = cyconv.conv2d(x, w, np.zeros(8, dtype), stride=2, padding=1)
    _assert_same_results([cyconv.conv2d(x, w, stride=2, padding=1)], [zero_bias])


def test_conv2d_fast_path_declines_what_it_cannot_take():
    from cyconv import conv
    x, w, b = _data(CASES[-1], np.float32)
    assert conv._fast_conv2d(x, w, b, 2, 1, None, 1) is not None
    assert conv._fast_conv2d(x, w, b, 2, 1, "relu", 1) is not None
    for args in [
        (x.astype(np.float64), w, b, 2, 1, 1),         # mixed dtypes promote
        (x, w, b.astype(np.float64), 2, 1, 1),
        (x.astype(np.float16), w.astype(np.float16), b.astype(np.float16), 2, 1, 1),
        (np.asfortranarray(x), w, b, 2, 1, 1),
        (x, w, b[:4], 2, 1, 1),                        # errors are the checked path's
        (x, w[:, :, :3], b, 2, 1, 1),
        (x, w, b, 0, 1, 1),
        (x, w, b, 2, -1, 1),
        (x, w, b, True, 1, 1),
        (x, w, b, 2, 1, 0),
        (x, w, b, 2, 1, True),
        (x, w, b, 2, "same", 1),
        (x[:, :1], w, b, 2, 0, 1),                     # window larger than the input
        (x[:0], w, b, 2, 1, 1),                        # empty
        (x.tolist(), w, b, 2, 1, 1),
        (np.ma.masked_array(x), w, b, 2, 1, 1),
        (x.astype(np.dtype(np.float32, metadata={"unit": "m"})), w, b, 2, 1, 1),
    ]:
        assert conv._fast_conv2d(*args[:5], None, args[5]) is None
    assert conv._fast_conv2d(x, w, b, 2, 1, "ReLU", 1) is None  # the checked path parses it
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cyconv.conv2d(x, w, b, stride=0)
    with pytest.raises(ValueError, match="window is larger than the padded input"):
        cyconv.conv2d(x[:, :1], w, b, stride=2)


def test_conv2d_fast_path_honours_threadpoolctl(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from cyconv import _args, conv
    seen = []
    from cyconv import _dispatch

    class NoCache(dict):  # every call asks conv._forward for its kernel
        def get(self, key, default=None):
            return None
    monkeypatch.setattr(_dispatch, "PLANS", NoCache())
    forward = conv._forward
    monkeypatch.setattr(conv, "_forward", lambda *a: (
        lambda *args: seen.append(args[-1]) or forward(*a)(*args)))
    x, w, b = _data(CASES[-1], np.float32)
    with threadpoolctl.threadpool_limits(1):
        cyconv.conv2d(x, w, b, stride=2, padding=1)
    cyconv.conv2d(x, w, b, stride=2, padding=1)
    cyconv.conv2d(x, w, b, stride=2, padding=1, num_threads=3)
    assert seen == [1, _args.resolve_num_threads(None), 3]


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), "same")])
def test_conv2d_relu_epilogue_is_bitwise_the_unfused_composition(level, dtype, stride, padding):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 9, 10, 5)).astype(dtype)
    x[0, 1, 2, 3] = np.nan
    w = rng.standard_normal((3, 3, 5, 37)).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    z = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    a = cyconv.conv2d(x, w, b, stride=stride, padding=padding, activation="relu")
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"),
                                  np.where(z <= 0, dtype(0), z).view(f"u{a.itemsize}"))
    assert np.isnan(a).any() and (a >= 0)[~np.isnan(a)].all()


def test_conv2d_relu_with_an_empty_input_gives_relu_of_the_bias():
    x = np.zeros((2, 3, 3, 0))
    w = np.zeros((1, 1, 0, 3))
    a = cyconv.conv2d(x, w, np.array([-1.0, -0.0, 2.0]), activation="relu")
    assert a.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(a[0, 0, 0], [0.0, 0.0, 2.0])
    assert not np.signbit(a).any()


def test_conv2d_rejects_an_unknown_activation():
    x, w = np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1))
    with pytest.raises(ValueError, match="activation must be None or 'relu', got 'tanh'"):
        cyconv.conv2d(x, w, activation="tanh")
    with pytest.raises(ValueError, match="activation must be None or 'relu'"):
        reference.conv2d(x, w, activation="sigmoid")


def test_conv2d_relu_matches_the_reference(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 8, 3)).astype(dtype)
    w = rng.standard_normal((3, 3, 3, 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    assert_close(cyconv.conv2d(x, w, b, padding=1, activation="relu"),
                 reference.conv2d(x, w, b, padding=1, activation="relu"), dtype)


def test_conv2d_backward_with_relu_is_bitwise_the_masked_composition(level, dtype):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 8, 9, 5)).astype(dtype)
    w = rng.standard_normal((3, 3, 5, 20)).astype(dtype)
    b = rng.standard_normal(20).astype(dtype)
    a = cyconv.conv2d(x, w, b, padding=1, activation="relu")
    da = rng.standard_normal(a.shape).astype(dtype)
    got = cyconv.conv2d_backward(da, x, w, padding=1, activation="relu", a=a)
    want = cyconv.conv2d_backward(np.where(a > 0, da, dtype(0)), x, w, padding=1)
    for g, r in zip(got, want):
        np.testing.assert_array_equal(g, r)
    ref = reference.conv2d_backward(da, x, w, padding=1, activation="relu", a=a)
    for g, r in zip(got, ref):
        assert_close(g, r, dtype) if dtype == np.float64 else np.testing.assert_allclose(
            g, r, rtol=1e-4, atol=1e-4)


def test_conv2d_backward_with_relu_needs_a_of_dz_shape():
    x, w = np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 2))
    dz = np.ones((1, 2, 2, 2))
    with pytest.raises(ValueError, match="needs a, the output of conv2d"):
        cyconv.conv2d_backward(dz, x, w, activation="relu")
    with pytest.raises(ValueError, match="a must have dz's shape"):
        cyconv.conv2d_backward(dz, x, w, activation="relu", a=np.ones((1, 2, 2, 3)))
