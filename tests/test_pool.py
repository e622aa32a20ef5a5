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


@pytest.mark.parametrize("c", [1, 4, 16, 21, 37, 64])
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


def test_max_pool2d_rejects_pools_of_2_to_the_31_elements_for_indices():
    # Tap indices are int32 for float32 data. A zero-stride view stands in
    # for the 8 GiB input: the check comes before any data is read.
    x = np.broadcast_to(np.float32(1), (1, 2**16, 2**15, 1))
    dp = np.ones((1, 1, 1, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="pool_size must cover fewer than 2\\*\\*31"):
        cyconv.max_pool2d_backward(dp, x, (2**16, 2**15))
    with pytest.raises(ValueError, match="pool_size must cover fewer than 2\\*\\*31"):
        cyconv.max_pool2d(x, (2**16, 2**15), return_indices=True)


@pytest.mark.parametrize("case", [CASES[1], CASES[3]], ids=[IDS[1], IDS[3]])
def test_pooling_results_are_bitwise_identical_across_thread_counts(case):
    x = np.concatenate([_x(case, np.float32)] * 4)
    results = []
    for n in (1, 2, 3):
        kw = dict(_kw(case), num_threads=n)
        pm = cyconv.max_pool2d(x, case[1], **kw)
        pa = cyconv.avg_pool2d(x, case[1], **kw)
        dp = np.random.default_rng(5).standard_normal(pm.shape).astype(np.float32)
        _, indices = cyconv.max_pool2d(x, case[1], return_indices=True, **kw)
        results.append((pm, pa, cyconv.max_pool2d_backward(dp, x, case[1], **kw),
                        cyconv.avg_pool2d_backward(dp, x.shape, case[1], **kw), indices,
                        cyconv.max_pool2d_backward(dp, x, case[1], indices=indices, **kw)))
    for later in results[1:]:
        for a, b in zip(later, results[0]):
            np.testing.assert_array_equal(a, b)


def test_pooling_empty_batch_gives_empty_result():
    x = np.ones((0, 4, 4, 3))
    assert cyconv.max_pool2d(x, 2).shape == (0, 2, 2, 3)
    assert cyconv.avg_pool2d(x, 2).shape == (0, 2, 2, 3)
    assert cyconv.max_pool2d_backward(np.ones((0, 2, 2, 3)), x, 2).shape == x.shape
    assert cyconv.avg_pool2d_backward(np.ones((0, 2, 2, 3)), x.shape, 2).shape == x.shape


# --------------------------------------------------------------------------
# max_pool2d(..., return_indices=True) and max_pool2d_backward(..., indices=)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool2d_indices_match_reference_and_name_the_maximum(case, dtype):
    x = _x(case, dtype)
    p, indices = cyconv.max_pool2d(x, case[1], **_kw(case), return_indices=True)
    p_ref, indices_ref = reference.max_pool2d(x, case[1], **_kw(case), return_indices=True)
    np.testing.assert_array_equal(p, p_ref)
    assert indices.dtype == np.int32 and indices.flags.c_contiguous
    np.testing.assert_array_equal(indices, indices_ref)
    np.testing.assert_array_equal(p, cyconv.max_pool2d(x, case[1], **_kw(case)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool2d_backward_with_indices_equals_backward_from_x(case, dtype):
    x = _x(case, dtype)
    x[..., ::2] = np.round(x[..., ::2])  # ties in half the channels
    p, indices = cyconv.max_pool2d(x, case[1], **_kw(case), return_indices=True)
    dp = np.random.default_rng(1).standard_normal(p.shape).astype(dtype)
    expected = cyconv.max_pool2d_backward(dp, x, case[1], **_kw(case))
    # x's values are not read with indices: garbage of the right shape does.
    garbage = np.full_like(x, np.nan)
    dx = cyconv.max_pool2d_backward(dp, garbage, case[1], **_kw(case), indices=indices)
    np.testing.assert_array_equal(dx, expected)
    assert_close(dx, reference.max_pool2d_backward(dp, x, case[1], **_kw(case),
                                                   indices=indices), dtype)


def test_max_pool2d_indices_of_nan_windows_and_windows_in_the_padding():
    x = np.zeros((1, 2, 2, 2))
    x[0, 1, 0, 1] = np.nan
    # padding 2 with pool 2: the corner windows lie wholly in the padding
    p, indices = cyconv.max_pool2d(x, 2, stride=1, padding=2, return_indices=True)
    assert p[0, 0, 0, 0] == -np.inf and indices[0, 0, 0, 0] == -1
    # window (2, 2) is x[0:2, 0:2]: its NaN x[1, 0] is tap (1, 0), index 1 * 2 + 0
    assert np.isnan(p[0, 2, 2, 1]) and indices[0, 2, 2, 1] == 2
    np.testing.assert_array_equal(indices, reference.max_pool2d(
        x, 2, stride=1, padding=2, return_indices=True)[1])


def test_max_pool2d_backward_ignores_indices_that_name_no_input_element(dtype):
    x = np.zeros((1, 4, 4, 3), dtype=dtype)
    kw = dict(stride=2, padding=1)
    p, indices = cyconv.max_pool2d(x, 3, **kw, return_indices=True)
    dp = np.ones(p.shape, dtype=dtype)
    bad = indices.copy()
    bad[0, 0, 0, 0] = -5     # negative
    bad[0, 0, 1, 1] = 9      # past the 3 x 3 window
    bad[0, 0, 0, 2] = 0      # the window's (0, 0) tap lies in the padding
    expected = reference.max_pool2d_backward(dp, x, 3, **kw, indices=bad)
    dx = cyconv.max_pool2d_backward(dp, x, 3, **kw, indices=bad)
    np.testing.assert_array_equal(dx, expected)
    assert dx.sum() == dp.size - 3
    # a wider integer type is narrowed without wrapping: 2**32 + 4 is not 4
    wide = indices.astype(np.int64)
    wide[0, 1, 1, 0] = 2**32 + 4
    dx = cyconv.max_pool2d_backward(dp, x, 3, **kw, indices=wide)
    assert dx.sum() == dp.size - 1
    wide[0, 1, 1, 0] = -2**40 + 4
    assert cyconv.max_pool2d_backward(dp, x, 3, **kw, indices=wide).sum() == dp.size - 1


def test_max_pool2d_backward_accepts_indices_in_any_layout_and_integer_type():
    x = np.random.default_rng(2).standard_normal((2, 7, 6, 5))
    p, indices = cyconv.max_pool2d(x, 3, stride=2, return_indices=True)
    dp = np.random.default_rng(3).standard_normal(p.shape)
    expected = cyconv.max_pool2d_backward(dp, x, 3, stride=2)
    for name, a in [("int8", indices.astype(np.int8)), ("uint16", indices.astype(np.uint16)),
                    *layouts(indices)]:
        before = a.copy()
        np.testing.assert_array_equal(
            cyconv.max_pool2d_backward(dp, x, 3, stride=2, indices=a), expected, err_msg=name)
        np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("indices, error, message", [
    (np.zeros((1, 2, 2, 1)), TypeError, "indices must be integers"),
    (np.zeros((1, 2, 3, 1), dtype=np.int64), ValueError, "indices must have the forward output's shape"),
    (np.zeros((2, 2, 1), dtype=np.int64), ValueError, "indices must be 4-D"),
])
def test_max_pool2d_backward_rejects_bad_indices_naming_them(indices, error, message):
    with pytest.raises(error, match=message):
        cyconv.max_pool2d_backward(np.ones((1, 2, 2, 1)), np.ones((1, 4, 4, 1)), 2,
                                   indices=indices)


def test_max_pool2d_return_indices_on_empty_inputs():
    p, indices = cyconv.max_pool2d(np.ones((0, 4, 4, 2), np.float32), 2, return_indices=True)
    assert p.shape == indices.shape == (0, 2, 2, 2) and indices.dtype == np.int32
    p, indices = cyconv.max_pool2d(np.ones((1, 0, 0, 2)), 1, padding=1, return_indices=True)
    assert p.shape == (1, 2, 2, 2) and (indices == -1).all() and (p == -np.inf).all()


@pytest.fixture
def dirty_empty(monkeypatch):
    """np.empty that returns garbage (NaN / -7), so a kernel that leaves an
    element of an np.empty output unwritten fails, instead of passing on
    memory that happens to be zero."""
    real_empty = np.empty

    def empty(shape, dtype=float, *args, **kwargs):
        a = real_empty(shape, dtype, *args, **kwargs)
        a.fill(np.nan if a.dtype.kind == "f" else -7)
        return a

    monkeypatch.setattr(np, "empty", empty)


@pytest.mark.parametrize("case", CASES + [((2, 8, 6, 3), 2, None, 0), ((1, 9, 9, 17), 3, None, 0),
                                          ((1, 7, 7, 2), 2, None, 1)],
                         ids=IDS + ["tiles", "tiles-3x3-tail", "tiles-with-padding"])
def test_every_output_element_is_written_whatever_np_empty_returns(case, dtype, dirty_empty):
    x = _x(case, dtype)
    kw = _kw(case)
    p_ref, indices_ref = reference.max_pool2d(x, case[1], **kw, return_indices=True)
    dp = np.random.default_rng(1).standard_normal(p_ref.shape).astype(dtype)
    p, indices = cyconv.max_pool2d(x, case[1], **kw, return_indices=True)
    np.testing.assert_array_equal(p, p_ref)
    np.testing.assert_array_equal(indices, indices_ref)
    want = reference.max_pool2d_backward(dp, x, case[1], **kw)
    assert_close(cyconv.max_pool2d_backward(dp, x, case[1], **kw), want, dtype)
    assert_close(cyconv.max_pool2d_backward(dp, x, case[1], **kw, indices=indices), want, dtype)
    for cip in (True, False):
        assert_close(cyconv.avg_pool2d_backward(dp, x.shape, case[1], **kw, count_include_pad=cip),
                     reference.avg_pool2d_backward(dp, x.shape, case[1], **kw,
                                                   count_include_pad=cip), dtype)
