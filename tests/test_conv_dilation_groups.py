"""conv2d / conv2d_backward with ``dilation`` and ``groups``: reference, finite differences,
every CPU level, thread counts, argument errors."""
import numpy as np
import pytest
from conftest import assert_close, layouts

import cyconv
from cyconv import reference

# (x shape, f_h x f_w, C_out, stride, padding, dilation, groups)
CASES = [
    ((2, 9, 10, 4), (3, 3), 6, 1, 1, 2, 1),
    ((2, 11, 9, 6), (3, 3), 4, 2, 2, 2, 2),                 # grouped, stride and dilation
    ((1, 12, 13, 5), (3, 2), 3, 1, "same", (2, 3), 1),       # "same" on the dilated extent
    ((2, 7, 8, 3), (2, 2), 6, 1, 0, 3, 3),                   # depthwise, multiplier 2
    ((2, 10, 9, 8), (3, 3), 8, 1, 1, 1, 8),                  # depthwise, multiplier 1
    ((1, 9, 9, 16), (3, 3), 16, 2, 1, 1, 16),                # depthwise, stride 2
    ((2, 12, 10, 16), (3, 3), 32, 2, 1, 1, 4),               # ResNeXt-like groups
    ((2, 8, 9, 64), (3, 3), 64, 1, 2, (2, 1), 1),            # wide channels, d_h != d_w
    ((1, 20, 17, 4), (5, 5), 16, 3, 4, 2, 2),
    ((1, 5, 6, 2), (3, 3), 2, 1, ((3, 1), (0, 4)), 3, 1),    # window wider than the image
    ((1, 4, 30, 6), (1, 7), 6, 1, (0, 9), (1, 3), 3),        # narrow image: padded-column paths
    ((2, 6, 21, 40), (3, 3), 40, 1, 1, 1, 40),               # depthwise 3-tap rows: tiles, rest,
    ((1, 5, 30, 16), (3, 3), 16, 1, 0, 1, 16),               # and scalar channels
    ((1, 7, 26, 33), (5, 3), 33, 1, (2, 1), 1, 33),
]
IDS = [f"x{c[0]}-f{c[1]}-co{c[2]}-s{c[3]}-p{c[4]}-d{c[5]}-g{c[6]}".replace(" ", "")
       for c in CASES]


def _data(case, dtype, seed=0):
    x_shape, (f_h, f_w), c_out, _, _, _, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    fan_in = f_h * f_w * x_shape[3] // groups  # outputs of order 1, as TOL assumes
    w = (rng.standard_normal((f_h, f_w, x_shape[3] // groups, c_out)) / np.sqrt(fan_in))
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w.astype(dtype), b


def _kw(case):
    _, _, _, stride, padding, dilation, groups = case
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_with_dilation_and_groups_matches_reference_at_every_level(case, dtype, level):
    x, w, b = _data(case, dtype)
    z = cyconv.conv2d(x, w, b, **_kw(case))
    assert z.flags.c_contiguous
    assert_close(z, reference.conv2d(x, w, b, **_kw(case)), dtype)
    assert_close(cyconv.conv2d(x, w, b, activation="relu", **_kw(case)),
                 reference.conv2d(x, w, b, activation="relu", **_kw(case)), dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv2d_backward_with_dilation_and_groups_matches_reference_at_every_level(
        case, dtype, level):
    x, w, _ = _data(case, dtype)
    z = reference.conv2d(x, w, **_kw(case))
    dz = np.random.default_rng(1).standard_normal(z.shape).astype(dtype)
    got = cyconv.conv2d_backward(dz, x, w, **_kw(case))
    want = reference.conv2d_backward(dz, x, w, **_kw(case))
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert g.shape == r.shape, name
        assert_close(g, r, dtype)


def test_dilated_conv2d_is_the_conv2d_of_zero_stuffed_filters():
    # An independent identity: taps d apart == a filter with d - 1 zeros between taps.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 11, 12, 3))
    w = rng.standard_normal((3, 2, 3, 4))
    wz = np.zeros((5, 4, 3, 4))
    wz[::2, ::3] = w
    np.testing.assert_allclose(cyconv.conv2d(x, w, dilation=(2, 3), padding=1),
                               cyconv.conv2d(x, wz, padding=1), rtol=1e-12, atol=1e-12)


def test_grouped_conv2d_is_the_concatenation_of_its_groups():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 7, 6))
    w = rng.standard_normal((3, 3, 2, 9))
    parts = [cyconv.conv2d(x[..., 2 * g:2 * g + 2], w[..., 3 * g:3 * g + 3], padding=1)
             for g in range(3)]
    np.testing.assert_array_equal(cyconv.conv2d(x, w, padding=1, groups=3),
                                  np.concatenate(parts, axis=-1))


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[8]], ids=[IDS[1], IDS[3], IDS[8]])
def test_conv2d_backward_with_dilation_and_groups_matches_finite_differences(case):
    x, w, b = _data(case, np.float64)
    kw = _kw(case)
    z = cyconv.conv2d(x, w, b, **kw)
    dz = np.random.default_rng(4).standard_normal(z.shape)
    dx, dw, db = cyconv.conv2d_backward(dz, x, w, **kw)
    loss = lambda x_, w_, b_: float(np.sum(cyconv.conv2d(x_, w_, b_, **kw) * dz))  # noqa: E731
    eps = 1e-6
    rng = np.random.default_rng(5)
    for a, g, which in ((x, dx, 0), (w, dw, 1), (b, db, 2)):
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


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[6], CASES[7], CASES[11], CASES[13]],
                         ids=[IDS[1], IDS[4], IDS[6], IDS[7], IDS[11], IDS[13]])
def test_conv2d_with_dilation_and_groups_is_bitwise_identical_across_thread_counts(case, dtype):
    x, w, b = _data(case, dtype)
    x = np.concatenate([x] * 5)  # more rows than threads and dw chunks
    kw = _kw(case)
    z = [cyconv.conv2d(x, w, b, num_threads=n, **kw) for n in (1, 2, 3)]
    dz = np.random.default_rng(3).standard_normal(z[0].shape).astype(dtype)
    grads = [cyconv.conv2d_backward(dz, x, w, num_threads=n, **kw) for n in (1, 2, 3)]
    for n in (1, 2):
        np.testing.assert_array_equal(z[n], z[0])
        for g, g0 in zip(grads[n], grads[0]):
            np.testing.assert_array_equal(g, g0)


def test_conv2d_with_groups_accepts_every_memory_layout_and_modifies_nothing():
    x, w, b = _data(CASES[6], np.float64)
    want = cyconv.conv2d(x, w, b, **_kw(CASES[6]))
    dz = np.random.default_rng(6).standard_normal(want.shape)
    want_g = cyconv.conv2d_backward(dz, x, w, **_kw(CASES[6]))
    for (name, xl), (_, wl), (_, dzl) in zip(layouts(x), layouts(w), layouts(dz)):
        keep = [a.copy() for a in (xl, wl, dzl)]
        np.testing.assert_array_equal(cyconv.conv2d(xl, wl, b, **_kw(CASES[6])), want,
                                      err_msg=name)
        for g, g0 in zip(cyconv.conv2d_backward(dzl, xl, wl, **_kw(CASES[6])), want_g):
            np.testing.assert_array_equal(g, g0, err_msg=name)
        for a, k in zip((xl, wl, dzl), keep):
            np.testing.assert_array_equal(a, k)


def test_default_dilation_and_groups_are_bitwise_the_plain_convolution():
    x, w, b = _data(((2, 9, 9, 4), (3, 3), 8, 1, 1, 1, 1), np.float32)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=1, dilation=(1, 1), groups=1),
                                  cyconv.conv2d(x, w, b, padding=1))


BAD = [
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(dilation=(1, -1)), ValueError, "dilation must be >= 1"),
    (dict(dilation=1.5), TypeError, "dilation must be an int"),
    (dict(dilation=(1, 2, 3)), TypeError, "dilation must be an int"),
    (dict(dilation=4), ValueError, "height .*< window 9 \\(3 taps at dilation 4\\)"),
    (dict(groups=0), ValueError, "groups must be >= 1"),
    (dict(groups=1.0), TypeError, "groups must be an int"),
    (dict(groups=True), TypeError, "groups must be an int"),
    (dict(groups=3), ValueError, "groups=3 must divide the input channels \\(4\\)"),
    (dict(groups=2, w=np.ones((3, 3, 4, 4))), ValueError, "w has 4 input channels .* groups=2"),
    (dict(groups=4, w=np.ones((3, 3, 1, 6))), ValueError, "output channels \\(6\\)"),
]


@pytest.mark.parametrize("override, error, message", BAD, ids=[m for _, _, m in BAD])
@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward"])
def test_bad_dilation_and_groups_raise_naming_the_argument(op, override, error, message):
    args = dict(x=np.ones((1, 8, 8, 4)), w=np.ones((3, 3, 2, 4)), groups=2, padding=0)
    args.update(override)
    x, w = args.pop("x"), args.pop("w")
    with pytest.raises(error, match=message):
        if op == "conv2d":
            cyconv.conv2d(x, w, **args)
        else:
            cyconv.conv2d_backward(np.ones((1, 6, 6, w.shape[3])), x, w, **args)


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[6]], ids=[IDS[1], IDS[3], IDS[6]])
def test_dilation_and_groups_under_nchw_equal_the_transposed_nhwc_results(case):
    # Filters under NCHW: PyTorch's grouped OIHW (C_out, C_in / groups, f_h, f_w).
    x, w, b = _data(case, np.float64)
    kw = _kw(case)
    z = cyconv.conv2d(x, w, b, **kw)
    x_n, w_n = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    np.testing.assert_array_equal(cyconv.conv2d(x_n, w_n, b, layout="NCHW", **kw),
                                  z.transpose(0, 3, 1, 2))
    dz = np.random.default_rng(8).standard_normal(z.shape)
    got = cyconv.conv2d_backward(dz.transpose(0, 3, 1, 2), x_n, w_n, layout="NCHW", **kw)
    want = cyconv.conv2d_backward(dz, x, w, **kw)
    np.testing.assert_array_equal(got[0], want[0].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(got[1], want[1].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(got[2], want[2])
