"""cyconv.conv_transpose2d / conv_transpose2d_backward: reference, adjointness with conv2d,
finite differences, every CPU level, thread counts, argument errors."""
import numpy as np
import pytest
from conftest import assert_close, layouts

import cyconv
from cyconv import reference

# (x shape, (f_h, f_w), C_out, stride, padding, output_padding, dilation, groups)
CASES = [
    ((2, 5, 6, 6), (4, 4), 4, 2, 1, 0, 1, 1),          # the U-Net / GAN upsampling layer
    ((2, 4, 5, 4), (3, 3), 6, 2, 1, 1, 1, 2),
    ((1, 5, 4, 4), (3, 2), 4, (3, 2), (2, 0), (2, 1), (1, 2), 4),
    ((2, 3, 3, 3), (3, 3), 2, 1, 0, 1, 2, 1),          # output_padding < dilation
    ((1, 6, 5, 8), (5, 5), 8, 2, 2, 1, 1, 1),
    ((2, 7, 6, 16), (3, 3), 16, 1, 1, 0, 1, 16),       # depthwise
    ((1, 4, 4, 2), (1, 1), 3, 3, 0, 2, 1, 1),          # 1x1 with gaps
    ((1, 2, 3, 64), (4, 4), 32, 2, 1, 1, 1, 1),        # wide channels
]
IDS = [f"x{c[0]}-f{c[1]}-co{c[2]}-s{c[3]}-p{c[4]}-op{c[5]}-d{c[6]}-g{c[7]}".replace(" ", "")
       for c in CASES]


def _data(case, dtype, seed=0):
    x_shape, (f_h, f_w), c_out, _, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((f_h, f_w, c_out // groups, x_shape[3])) / np.sqrt(f_h * f_w * 4)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w.astype(dtype), b


def _kw(case):
    _, _, _, stride, padding, output_padding, dilation, groups = case
    return dict(stride=stride, padding=padding, output_padding=output_padding,
                dilation=dilation, groups=groups)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv_transpose2d_matches_reference_at_every_level(case, dtype, level):
    x, w, b = _data(case, dtype)
    y = cyconv.conv_transpose2d(x, w, b, **_kw(case))
    assert y.flags.c_contiguous
    assert_close(y, reference.conv_transpose2d(x, w, b, **_kw(case)), dtype)
    assert_close(cyconv.conv_transpose2d(x, w, **_kw(case)),
                 reference.conv_transpose2d(x, w, **_kw(case)), dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv_transpose2d_backward_matches_reference_at_every_level(case, dtype, level):
    x, w, _ = _data(case, dtype)
    y = reference.conv_transpose2d(x, w, **_kw(case))
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    got = cyconv.conv_transpose2d_backward(dy, x, w, **_kw(case))
    want = reference.conv_transpose2d_backward(dy, x, w, **_kw(case))
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert g.shape == r.shape, name
        assert_close(g, r, dtype)


@pytest.mark.parametrize("case", [c for c in CASES if np.all(np.array(c[5]) <= np.array(c[4]))],
                         ids=str)
def test_conv_transpose2d_is_the_adjoint_of_conv2d_with_the_same_filters(case):
    # <conv2d(u, w), x> == <u, conv_transpose2d(x, w)>, the conv padding (p, p - op).
    x, w, _ = _data(case, np.float64)
    kw = _kw(case)
    y = cyconv.conv_transpose2d(x, w, **kw)
    u = np.random.default_rng(2).standard_normal(y.shape)
    p = np.broadcast_to(kw["padding"], 2)
    op = np.broadcast_to(kw["output_padding"], 2)
    pads = tuple((int(a), int(a - o)) for a, o in zip(p, op))
    z = cyconv.conv2d(u, w, stride=kw["stride"], padding=pads, dilation=kw["dilation"],
                      groups=kw["groups"])
    assert z.shape == x.shape
    np.testing.assert_allclose(np.vdot(z, x), np.vdot(u, y), rtol=1e-12)


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 8, 6))
    w = rng.standard_normal((3, 3, 3, 4))
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    dz = rng.standard_normal(cyconv.conv2d(x, w, **kw).shape)
    dx = cyconv.conv2d_backward(dz, x, w, grads=("dx",), **kw)[0]
    # x's 9 rows and 8 columns: output_padding picks them among the sizes stride 2 maps to 5 x 4
    y = cyconv.conv_transpose2d(dz, w, output_padding=(0, 1), **kw)
    np.testing.assert_array_equal(y, dx)


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[3]], ids=[IDS[1], IDS[2], IDS[3]])
def test_conv_transpose2d_backward_matches_finite_differences(case):
    x, w, b = _data(case, np.float64)
    kw = _kw(case)
    y = cyconv.conv_transpose2d(x, w, b, **kw)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    grads = cyconv.conv_transpose2d_backward(dy, x, w, **kw)
    loss = lambda *a: float(np.sum(cyconv.conv_transpose2d(*a, **kw) * dy))  # noqa: E731
    eps = 1e-6
    rng = np.random.default_rng(5)
    for which, (a, g) in enumerate(zip((x, w, b), grads)):
        for _ in range(4):
            idx = tuple(rng.integers(0, n) for n in a.shape)
            args = [x, w, b]
            plus, minus = a.copy(), a.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args[which] = plus
            lp = loss(*args)
            args[which] = minus
            lm = loss(*args)
            np.testing.assert_allclose((lp - lm) / (2 * eps), g[idx], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[7]], ids=[IDS[0], IDS[2], IDS[7]])
def test_conv_transpose2d_is_bitwise_identical_across_thread_counts(case, dtype):
    x, w, b = _data(case, dtype)
    x = np.concatenate([x] * 5)
    kw = _kw(case)
    y = [cyconv.conv_transpose2d(x, w, b, num_threads=n, **kw) for n in (1, 2, 3)]
    dy = np.random.default_rng(3).standard_normal(y[0].shape).astype(dtype)
    grads = [cyconv.conv_transpose2d_backward(dy, x, w, num_threads=n, **kw) for n in (1, 2, 3)]
    for n in (1, 2):
        np.testing.assert_array_equal(y[n], y[0])
        for g, g0 in zip(grads[n], grads[0]):
            np.testing.assert_array_equal(g, g0)


def test_conv_transpose2d_accepts_every_memory_layout_and_modifies_nothing():
    x, w, b = _data(CASES[1], np.float64)
    kw = _kw(CASES[1])
    want = cyconv.conv_transpose2d(x, w, b, **kw)
    dy = np.random.default_rng(6).standard_normal(want.shape)
    want_g = cyconv.conv_transpose2d_backward(dy, x, w, **kw)
    for (name, xl), (_, wl), (_, dyl) in zip(layouts(x), layouts(w), layouts(dy)):
        keep = [a.copy() for a in (xl, wl, dyl)]
        np.testing.assert_array_equal(cyconv.conv_transpose2d(xl, wl, b, **kw), want,
                                      err_msg=name)
        for g, g0 in zip(cyconv.conv_transpose2d_backward(dyl, xl, wl, **kw), want_g):
            np.testing.assert_array_equal(g, g0, err_msg=name)
        for a, k in zip((xl, wl, dyl), keep):
            np.testing.assert_array_equal(a, k)


def test_conv_transpose2d_writes_into_out_and_promotes_dtypes():
    x, w, b = _data(CASES[0], np.float32)
    want = cyconv.conv_transpose2d(x, w, b, stride=2, padding=1)
    out = np.full(want.shape, np.nan, dtype=np.float32)
    assert cyconv.conv_transpose2d(x, w, b, stride=2, padding=1, out=out) is out
    np.testing.assert_array_equal(out, want)
    assert cyconv.conv_transpose2d(x, w.astype(np.float64), stride=2).dtype == np.float64
    with pytest.raises(ValueError, match="out must have shape"):
        cyconv.conv_transpose2d(x, w, stride=2, out=np.empty((1, 2, 3, 4), np.float32))


def test_conv_transpose2d_backward_computes_only_the_requested_gradients():
    x, w, _ = _data(CASES[0], np.float64)
    dy = np.ones(cyconv.conv_transpose2d(x, w, stride=2, padding=1).shape)
    dx, dw, db = cyconv.conv_transpose2d_backward(dy, x, w, stride=2, padding=1, grads=("dw",))
    assert dx is None and db is None and dw.shape == w.shape


def test_conv_transpose2d_of_an_empty_batch_and_of_no_channels():
    w = np.ones((2, 2, 3, 0))
    y = cyconv.conv_transpose2d(np.ones((1, 2, 2, 0)), w, np.arange(3.0), stride=2)
    np.testing.assert_array_equal(y, np.broadcast_to(np.arange(3.0), (1, 4, 4, 3)))
    assert cyconv.conv_transpose2d(np.ones((0, 2, 2, 1)), np.ones((2, 2, 3, 1))).shape == (
        0, 3, 3, 3)


BAD = [
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="same"), TypeError, "padding must be an int or a pair"),
    (dict(output_padding=2), ValueError, "output_padding must be smaller than the stride or "
                                         "the dilation along height"),
    (dict(output_padding=(0, -1)), ValueError, "output_padding must be >= 0"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(groups=3), ValueError, "groups=3 must divide the input channels \\(4\\)"),
    (dict(groups=0), ValueError, "groups must be >= 1"),
    (dict(groups="2"), TypeError, "groups must be an int"),
    (dict(padding=5), ValueError, "padding 5 crops the whole output along height"),
    (dict(w=np.ones((3, 3, 2, 3))), ValueError, "w has 3 input channels \\(w.shape\\[3\\]\\)"),
    (dict(b=np.ones(3)), ValueError, "b must have shape"),
    (dict(x=np.ones((4, 4, 4))), ValueError, "x must be 4-D"),
    (dict(num_threads=0), ValueError, "num_threads"),
]


@pytest.mark.parametrize("override, error, message", BAD, ids=[m for _, _, m in BAD])
def test_conv_transpose2d_rejects_bad_arguments_naming_them(override, error, message):
    args = dict(x=np.ones((1, 4, 4, 4)), w=np.ones((3, 3, 2, 4)), b=None, stride=2)
    args.update(override)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(error, match=message):
        cyconv.conv_transpose2d(x, w, b, **args)


def test_conv_transpose2d_backward_rejects_dz_of_the_wrong_shape():
    x, w = np.ones((1, 4, 4, 4)), np.ones((3, 3, 2, 4))
    with pytest.raises(ValueError, match=r"dz must have the forward output's shape \(1, 9, 9, 2\)"):
        cyconv.conv_transpose2d_backward(np.ones((1, 8, 8, 2)), x, w, stride=2)


def test_conv_transpose_docstring_examples_run():
    import doctest

    from cyconv import conv_transpose
    result = doctest.testmod(conv_transpose, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
