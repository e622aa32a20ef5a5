"""Max and average pooling, forward and backward, against cyconv.reference and the contract."""
import numpy as np
import pytest
from conftest import assert_close, layouts

import cyconv
from cyconv import reference

# (x shape, pool_size, stride, padding): non-overlapping, overlapping, rectangular,
# stride > window (gaps), every padding form, m = 1, C = 1.
CASES = [
    ((2, 8, 8, 3), 2, None, 0),
    ((2, 9, 7, 4), 3, 2, 0),
    ((1, 7, 9, 1), (2, 3), (1, 2), 1),
    ((2, 10, 9, 2), 3, 2, "same"),
    ((2, 6, 7, 3), (2, 2), 1, "same"),
    ((3, 7, 7, 2), 2, 3, "valid"),
    ((2, 8, 6, 5), (3, 2), (2, 2), ((1, 0), (0, 1))),
    ((1, 5, 5, 2), 2, 1, ((1, 1), (1, 1))),
    ((4, 4, 4, 1), 4, None, 0),
    # channel counts that fill whole vector blocks, and blocks plus a scalar tail
    ((1, 6, 6, 16), 2, None, "same"),
    ((2, 7, 9, 37), 3, 2, 1),
    # disjoint windows (stride >= pool) with padding, gaps and a channel tail
    ((2, 7, 9, 21), 2, None, 1),
    ((1, 11, 10, 18), (2, 3), (3, 4), ((1, 0), (2, 1))),
]
IDS = [f"x{c[0]}-f{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in CASES]


def _x(case, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(case[0]).astype(dtype)


def _kw(case):
    return dict(stride=case[2], padding=case[3])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool2d_matches_reference(case, dtype):
    x = _x(case, dtype)
    p = cyconv.max_pool2d(x, case[1], **_kw(case))
    # max selects one input value: equality is exact.
    assert p.dtype == dtype
    np.testing.assert_array_equal(p, reference.max_pool2d(x, case[1], **_kw(case)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool2d_backward_matches_reference(case, dtype):
    x = _x(case, dtype)
    p = reference.max_pool2d(x, case[1], **_kw(case))
    dp = np.random.default_rng(1).standard_normal(p.shape).astype(dtype)
    assert_close(cyconv.max_pool2d_backward(dp, x, case[1], **_kw(case)),
                 reference.max_pool2d_backward(dp, x, case[1], **_kw(case)), dtype)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool2d_matches_reference(case, dtype, count_include_pad):
    x = _x(case, dtype)
    kw = dict(_kw(case), count_include_pad=count_include_pad)
    assert_close(cyconv.avg_pool2d(x, case[1], **kw),
                 reference.avg_pool2d(x, case[1], **kw), dtype)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool2d_backward_matches_reference(case, dtype, count_include_pad):
    x = _x(case, dtype)
    kw = dict(_kw(case), count_include_pad=count_include_pad)
    p = reference.avg_pool2d(x, case[1], **kw)
    dp = np.random.default_rng(1).standard_normal(p.shape).astype(dtype)
    assert_close(cyconv.avg_pool2d_backward(dp, x.shape, case[1], **kw),
                 reference.avg_pool2d_backward(dp, x.shape, case[1], **kw), dtype)


def test_avg_pool2d_reproduces_the_notes_worked_windows():
    windows = np.array([[[3, 4, 5], [1, 0, 8], [2, 3, 4]],
                        [[2, 7, 3], [5, 6, 1], [4, 4, 2]]], dtype=float)[..., None]
    p = cyconv.avg_pool2d(windows, 3).ravel()
    np.testing.assert_allclose(p, [10 / 3, 34 / 9], rtol=1e-15)


def test_max_pool2d_backward_gives_a_tied_window_gradient_to_its_first_maximum():
    # After a ReLU whole windows are 0: the notes' mask A == max(A) would give
    # every element the gradient; the contract gives it to the first only.
    x = np.zeros((1, 4, 4, 1))
    x[0, 2, 3, 0] = x[0, 3, 2, 0] = 1.0  # a tie of two maxima in the last window
    dp = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    dx = cyconv.max_pool2d_backward(dp, x, 2)[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[1, 0, 2, 0],
                                       [0, 0, 0, 0],
                                       [3, 0, 0, 4],
                                       [0, 0, 0, 0]])


def test_max_pool2d_propagates_nan_and_routes_its_gradient_to_the_first_nan():
    x = np.arange(8.0).reshape(1, 2, 4, 1)
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = np.nan
    p = cyconv.max_pool2d(x, 2)
    assert np.isnan(p[0, 0, 0, 0]) and p[0, 0, 1, 0] == 7.0
    dx = cyconv.max_pool2d_backward(np.ones_like(p), x, 2)[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0, 1, 0, 0], [0, 0, 0, 1]])


@pytest.mark.parametrize("c", [1, 4, 16, 21])
def test_max_pool2d_tie_and_nan_rules_hold_in_every_channel_lane(c, dtype):
    # Channels go through vector kernels in whole vectors and a scalar tail:
    # every lane must apply the first-maximum and NaN rules.
    x = np.zeros((1, 2, 4, c), dtype=dtype)
    x[0, 1, 0, :] = 1.0          # window 0: unique max at tap (1, 0)
    x[0, 0, 3, :] = np.nan       # window 1: NaN at tap (0, 1)
    x[0, 1, 2, :] = np.nan       #           and a later NaN at tap (1, 0)
    p = cyconv.max_pool2d(x, 2)
    assert np.all(p[0, 0, 0] == 1.0) and np.all(np.isnan(p[0, 0, 1]))
    dx = cyconv.max_pool2d_backward(np.ones_like(p), x, 2)
    want = np.zeros_like(x)
    want[0, 1, 0, :] = 1.0
    want[0, 0, 3, :] = 1.0
    np.testing.assert_array_equal(dx, want)
    # all zeros: the whole gradient goes to the first element of the window
    z = np.zeros((1, 2, 2, c), dtype=dtype)
    dz = cyconv.max_pool2d_backward(np.full((1, 1, 1, c), 3.0, dtype), z, 2)
    assert np.all(dz[0, 0, 0] == 3.0) and dz.sum() == 3.0 * c


def test_max_pool2d_padding_counts_as_minus_infinity():
    x = -np.ones((1, 2, 2, 1))
    p = cyconv.max_pool2d(x, 2, stride=1, padding=1)
    np.testing.assert_array_equal(p, -np.ones((1, 3, 3, 1)))


def test_avg_pool2d_count_include_pad_divides_by_window_or_by_real_elements():
    x = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)  # [[1, 2], [3, 4]]
    with_pad = cyconv.avg_pool2d(x, 2, stride=1, padding=1)[0, :, :, 0]
    without = cyconv.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)[0, :, :, 0]
    np.testing.assert_allclose(with_pad, [[1 / 4, 3 / 4, 2 / 4],
                                          [4 / 4, 10 / 4, 6 / 4],
                                          [3 / 4, 7 / 4, 4 / 4]])
    np.testing.assert_allclose(without, [[1, 3 / 2, 2],
                                         [4 / 2, 10 / 4, 6 / 2],
                                         [3, 7 / 2, 4]])


@pytest.mark.parametrize("op", ["max", "avg"])
def test_pooling_accepts_every_memory_layout_and_modifies_nothing(op):
    case = CASES[6]
    x = _x(case, np.float64)
    fwd = cyconv.max_pool2d if op == "max" else cyconv.avg_pool2d
    want = fwd(x, case[1], **_kw(case))
    dp = np.random.default_rng(2).standard_normal(want.shape)

    def backward(dp_, x_):
        if op == "max":
            return cyconv.max_pool2d_backward(dp_, x_, case[1], **_kw(case))
        return cyconv.avg_pool2d_backward(dp_, x_.shape, case[1], **_kw(case))

    want_dx = backward(dp, x)
    for (name, xl), (_, dpl) in zip(layouts(x), layouts(dp)):
        copies = (xl.copy(), dpl.copy())
        np.testing.assert_array_equal(fwd(xl, case[1], **_kw(case)), want, err_msg=name)
        np.testing.assert_array_equal(backward(dpl, xl), want_dx, err_msg=name)
        np.testing.assert_array_equal(xl, copies[0], err_msg=name)
        np.testing.assert_array_equal(dpl, copies[1], err_msg=name)


@pytest.mark.parametrize("in_dtype, expected", [
    (np.float32, np.float32), (np.float64, np.float64), (np.int16, np.float64),
    (np.bool_, np.float64), (np.float16, np.float32)])
def test_pooling_result_dtype(in_dtype, expected):
    x = np.ones((1, 4, 4, 2), dtype=in_dtype)
    assert cyconv.max_pool2d(x, 2).dtype == expected
    assert cyconv.avg_pool2d(x, 2).dtype == expected
    dp = np.ones((1, 2, 2, 2), dtype=in_dtype)
    assert cyconv.max_pool2d_backward(dp, x, 2).dtype == expected
    assert cyconv.avg_pool2d_backward(dp, x.shape, 2).dtype == expected


BAD_POOL = [
    (dict(x=np.ones((4, 4, 2))), ValueError, "x must be 4-D"),
    (dict(pool_size=0), ValueError, "pool_size must be >= 1"),
    (dict(pool_size=(2, 2, 2)), TypeError, "pool_size must be an int or a pair"),
    (dict(pool_size=7), ValueError, "height .*6 < window 7"),
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="half"), ValueError, "padding must be 'valid' or 'same'"),
    (dict(x=np.ones((1, 6, 6, 2), dtype=np.complex64)), TypeError, "x must hold real numbers"),
    (dict(num_threads=-1), ValueError, "num_threads"),
]


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("override, error, message", BAD_POOL, ids=[m for _, _, m in BAD_POOL])
def test_pooling_rejects_bad_arguments_naming_them(op, override, error, message):
    args = dict(x=np.ones((1, 6, 6, 2)), pool_size=2)
    args.update(override)
    with pytest.raises(error, match=message):
        getattr(cyconv, op)(args.pop("x"), args.pop("pool_size"), **args)


def test_pooling_backward_rejects_dp_of_the_wrong_shape():
    x = np.ones((1, 6, 6, 2))
    with pytest.raises(ValueError, match=r"dp must have the forward output's shape \(1, 3, 3, 2\)"):
        cyconv.max_pool2d_backward(np.ones((1, 3, 3, 1)), x, 2)
    with pytest.raises(ValueError, match=r"dp must have the forward output's shape"):
        cyconv.avg_pool2d_backward(np.ones((1, 2, 3, 2)), x.shape, 2)
    with pytest.raises(ValueError, match="x_shape must be 4"):
        cyconv.avg_pool2d_backward(np.ones((1, 3, 3, 2)), (6, 6, 2), 2)


def test_max_pool2d_backward_rejects_pools_of_2_to_the_24_elements():
    x = np.ones((1, 1, 2**24, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="pool_size must cover fewer than 2"):
        cyconv.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, (1, 2**24))


@pytest.mark.parametrize("case", [CASES[1], CASES[3]], ids=[IDS[1], IDS[3]])
def test_pooling_results_are_bitwise_identical_across_thread_counts(case):
    x = np.concatenate([_x(case, np.float32)] * 4)
    results = []
    for n in (1, 2, 3):
        kw = dict(_kw(case), num_threads=n)
        pm = cyconv.max_pool2d(x, case[1], **kw)
        pa = cyconv.avg_pool2d(x, case[1], **kw)
        dp = np.random.default_rng(5).standard_normal(pm.shape).astype(np.float32)
        results.append((pm, pa, cyconv.max_pool2d_backward(dp, x, case[1], **kw),
                        cyconv.avg_pool2d_backward(dp, x.shape, case[1], **kw)))
    for later in results[1:]:
        for a, b in zip(later, results[0]):
            np.testing.assert_array_equal(a, b)


def test_pooling_empty_batch_gives_empty_result():
    x = np.ones((0, 4, 4, 3))
    assert cyconv.max_pool2d(x, 2).shape == (0, 2, 2, 3)
    assert cyconv.avg_pool2d(x, 2).shape == (0, 2, 2, 3)
    assert cyconv.max_pool2d_backward(np.ones((0, 2, 2, 3)), x, 2).shape == x.shape
    assert cyconv.avg_pool2d_backward(np.ones((0, 2, 2, 3)), x.shape, 2).shape == x.shape
