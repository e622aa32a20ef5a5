"""cyconv.compat: the course's published checks, the course's own loops, and cyconv.reference.

The published numbers come from the Coursera assignment "Convolutional Neural
Networks: Step by Step" (course 4, week 1) in its successive versions: the
notebook's "Expected Output" cells and its ``public_tests.py``. Every one is
asserted twice: for the course's loops written out plainly below (which shows
the number is what the course's algorithm gives for those inputs) and for
:mod:`cyconv.compat`. The course draws its inputs from NumPy's legacy RNG
(``np.random.seed(n)`` then ``np.random.randn``); ``RandomState(n).randn``
gives the same stream without touching the global state. Everything else
uses seeded ``default_rng`` generators.
"""
import numpy as np
import pytest

import cyconv
from cyconv import compat, reference
from cyconv.compat import (
    conv_backward,
    conv_forward,
    conv_single_step,
    create_mask_from_window,
    distribute_value,
    pool_backward,
    pool_forward,
    zero_pad,
)

NAMES = {"zero_pad", "conv_single_step", "conv_forward", "conv_backward",
         "pool_forward", "pool_backward", "create_mask_from_window", "distribute_value"}
TOL = dict(rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# The course's loops, one Python loop per i, h, w, c as in the notebook
# --------------------------------------------------------------------------

def course_zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant",
                  constant_values=(0, 0))


def course_conv_single_step(a_slice_prev, W, b):
    return np.sum(a_slice_prev * W) + float(np.squeeze(b))


def course_conv_forward(A_prev, W, b, hparameters):
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = (n_H_prev + 2 * pad - f) // stride + 1
    n_W = (n_W_prev + 2 * pad - f) // stride + 1
    Z = np.zeros((m, n_H, n_W, n_C))
    A_prev_pad = course_zero_pad(A_prev, pad)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    a_slice = A_prev_pad[i, h * stride:h * stride + f, w * stride:w * stride + f, :]
                    Z[i, h, w, c] = course_conv_single_step(a_slice, W[:, :, :, c], b[:, :, :, c])
    return Z, (A_prev, W, b, hparameters)


def course_conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f = W.shape[0]
    m, n_H, n_W, n_C = dZ.shape
    A_prev_pad = course_zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros(A_prev_pad.shape)
    dW = np.zeros(W.shape)
    db = np.zeros(b.shape)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    rows = slice(h * stride, h * stride + f)
                    cols = slice(w * stride, w * stride + f)
                    dA_prev_pad[i, rows, cols, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += A_prev_pad[i, rows, cols, :] * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    # The notebook's hint slices [pad:-pad], which is empty for pad == 0; this is
    # the slicing it means.
    n_H_prev, n_W_prev = A_prev.shape[1:3]
    return dA_prev_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :], dW, db


def course_pool_forward(A_prev, hparameters, mode="max"):
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = (n_H_prev - f) // stride + 1
    n_W = (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    a_slice = A_prev[i, h * stride:h * stride + f, w * stride:w * stride + f, c]
                    A[i, h, w, c] = np.max(a_slice) if mode == "max" else np.mean(a_slice)
    return A, (A_prev, hparameters)


def course_pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    rows = slice(h * stride, h * stride + f)
                    cols = slice(w * stride, w * stride + f)
                    if mode == "max":
                        a_slice = A_prev[i, rows, cols, c]
                        dA_prev[i, rows, cols, c] += (a_slice == np.max(a_slice)) * dA[i, h, w, c]
                    else:
                        dA_prev[i, rows, cols, c] += dA[i, h, w, c] / (f * f) * np.ones((f, f))
    return dA_prev


def legacy_randn(seed, *shapes):
    """``np.random.seed(seed)`` followed by one ``np.random.randn`` per shape."""
    rs = np.random.RandomState(seed)
    return [rs.randn(*shape) for shape in shapes]


def assert_printed(actual, printed):
    """``actual`` equals the course's printed ``printed`` to the digits printed.

    ``printed`` is a number or a NumPy-printed array (brackets and all); the
    tolerance is half a unit in the last printed decimal, and never below
    1e-12 relative (summation order may differ in the last bits).
    """
    tokens = printed.replace("[", " ").replace("]", " ").split()
    expected = np.array(tokens, dtype=float).reshape(np.shape(actual))
    decimals = max(len(t.partition(".")[2]) for t in tokens)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0.5 * 10.0 ** -decimals)


# --------------------------------------------------------------------------
# The course's published checks
# --------------------------------------------------------------------------

def test_zero_pad_matches_published_checks():
    # public_tests.zero_pad_test: np.random.seed(1); x = randn(4, 3, 3, 2); pad 3 and 2.
    (x,) = legacy_randn(1, (4, 3, 3, 2))
    for pad in (3, 2):
        x_pad = zero_pad(x, pad)
        assert type(x_pad) == np.ndarray
        assert x_pad.shape == (4, 3 + 2 * pad, 3 + 2 * pad, 2)
        np.testing.assert_array_equal(x_pad, course_zero_pad(x, pad))
        np.testing.assert_array_equal(x_pad[:, pad:pad + 3, pad:pad + 3, :], x)
        assert not x_pad[:, :pad].any() and not x_pad[:, :, -pad:].any()
    # The older public test prints the interior of x_pad[0] for pad = 2.
    assert_printed(zero_pad(x, 2)[0, 2, 2:5],
                   "[[1.62434536 -0.61175641] [-0.52817175 -1.07296862] [0.86540763 -2.3015387]]")


@pytest.mark.parametrize("seed, shape, printed", [
    (1, (4, 4, 3), "-6.999089450680221"),   # notebook cell and older public_tests
    (3, (5, 5, 3), "-3.5443670581382474"),  # latest public_tests.conv_single_step_test
], ids=["seed1-4x4x3", "seed3-5x5x3"])
def test_conv_single_step_matches_published_value_as_float64(seed, shape, printed):
    a_slice_prev, W, b = legacy_randn(seed, shape, shape, (1, 1, 1))
    Z = conv_single_step(a_slice_prev, W, b)
    assert type(Z) == np.float64
    assert_printed(course_conv_single_step(a_slice_prev, W, b), printed)
    assert_printed(Z, printed)


# (version, A_prev shape, W shape, hparameters, Z's mean, index into Z, Z[index],
#  cache_conv[0][1][2][3]) as printed by the notebook's conv_forward cell.
CONV_FORWARD_PUBLISHED = [
    ("latest", (2, 5, 7, 4), (3, 3, 4, 8), {"pad": 1, "stride": 2}, "0.5511276474566768",
     (0, 2, 1), "[-2.17796037 8.07171329 -0.5772704 3.36286738 4.48113645 -2.89198428"
                " 10.99288867 3.03171932]",
     "[-1.1191154 1.9560789 -0.3264995 -1.34267579]"),
    ("v2a", (10, 5, 7, 4), (3, 3, 4, 8), {"pad": 1, "stride": 2}, "0.692360880758",
     (3, 2, 1), "[-1.28912231 2.27650251 6.61941931 0.95527176 8.25132576"
                " 2.31329639 13.00689405 2.34576051]",
     "[-1.1191154 1.9560789 -0.3264995 -1.34267579]"),
    ("v1", (10, 4, 4, 3), (2, 2, 3, 8), {"pad": 2, "stride": 2}, "0.0489952035289",
     (3, 2, 1), "[-0.61490741 -6.7439236 -2.55153897 1.75698377 3.56208902"
                " 0.53036437 5.18531798 8.75898442]",
     "[-0.20075807 0.18656139 0.41005165]"),
]


@pytest.mark.parametrize("case", CONV_FORWARD_PUBLISHED, ids=[c[0] for c in CONV_FORWARD_PUBLISHED])
def test_conv_forward_matches_published_values(case):
    _, a_shape, w_shape, hparameters, mean, index, z_at, cache_at = case
    A_prev, W, b = legacy_randn(1, a_shape, w_shape, (1, 1, 1, w_shape[3]))
    for Z, cache in (course_conv_forward(A_prev, W, b, hparameters),
                     conv_forward(A_prev, W, b, hparameters)):
        assert type(Z) == np.ndarray and Z.dtype == np.float64
        assert_printed(np.mean(Z), mean)
        assert_printed(Z[index], z_at)
        assert_printed(cache[0][1][2][3], cache_at)


def test_conv_forward_matches_published_public_test_2():
    # latest public_tests.conv_forward_test_2: seed 3, three hparameter sets.
    rs = np.random.RandomState(3)
    A_prev, W, b = rs.randn(2, 5, 7, 4), rs.randn(3, 3, 4, 8), rs.randn(1, 1, 1, 8)
    for hparameters, shape in (({"pad": 3, "stride": 1}, (2, 9, 11, 8)),
                               ({"pad": 0, "stride": 2}, (2, 2, 3, 8))):
        assert conv_forward(A_prev, W, b, hparameters)[0].shape == shape
        assert course_conv_forward(A_prev, W, b, hparameters)[0].shape == shape
    W, b = rs.randn(5, 5, 4, 8), rs.randn(1, 1, 1, 8)
    hparameters = {"pad": 6, "stride": 1}
    expected_cache = ("[[ 1.98848968 1.19505834 -0.0952376 -0.52718778]"
                      " [-0.32158469 0.15113037 -0.01862772 0.48352879]"
                      " [ 0.76896516 1.36624284 1.14726479 -0.11022916]"
                      " [ 0.38825041 -0.38712718 -0.58722031 1.91082685]"
                      " [-0.45984615 1.99073781 -0.34903539 0.25282509]"
                      " [ 1.08940955 0.02392202 0.39312528 -0.2413848 ]"
                      " [-0.47552486 -0.16577702 -0.64971742 1.63138295]]")
    for Z, cache in (course_conv_forward(A_prev, W, b, hparameters),
                     conv_forward(A_prev, W, b, hparameters)):
        assert Z.shape == (2, 13, 15, 8)
        assert_printed(np.mean(Z), "-0.5384027772160062")
        assert_printed(cache[0][1, 2], expected_cache)


def test_conv_backward_matches_published_means():
    # Notebook conv_backward cell (every version): seed 1, (10, 4, 4, 3), pad 2, stride 2.
    A_prev, W, b = legacy_randn(1, (10, 4, 4, 3), (2, 2, 3, 8), (1, 1, 1, 8))
    hparameters = {"pad": 2, "stride": 2}
    course = course_conv_backward(*course_conv_forward(A_prev, W, b, hparameters))
    fast = conv_backward(*conv_forward(A_prev, W, b, hparameters))
    for dA, dW, db in (course, fast):
        assert type(dA) == np.ndarray and type(dW) == np.ndarray and type(db) == np.ndarray
        assert (dA.shape, dW.shape, db.shape) == ((10, 4, 4, 3), (2, 2, 3, 8), (1, 1, 1, 8))
        assert_printed(np.mean(dA), "1.45243777754")
        assert_printed(np.mean(dW), "1.72699145831")
        assert_printed(np.mean(db), "7.83923256462")


# (A_prev seed and shape, hparameters, mode, index into A, A[index]) as printed.
POOL_FORWARD_PUBLISHED = [
    ((2, 5, 5, 3), {"stride": 1, "f": 3}, "max", (1, 1),
     "[[1.96710175 0.84616065 1.27375593] [1.96710175 0.84616065 1.23616403]"
     " [1.62765075 1.12141771 1.2245077 ]]"),
    ((2, 5, 5, 3), {"stride": 1, "f": 3}, "average", (1, 1),
     "[[ 0.44497696 -0.00261695 -0.31040307] [ 0.50811474 -0.23493734 -0.23961183]"
     " [ 0.11872677 0.17255229 -0.22112197]]"),
    ((2, 5, 5, 3), {"stride": 2, "f": 3}, "max", (0,),
     "[[[1.74481176 0.90159072 1.65980218] [1.74481176 1.6924546 1.65980218]]"
     " [[1.13162939 1.51981682 2.18557541] [1.13162939 1.6924546 2.18557541]]]"),
    ((2, 5, 5, 3), {"stride": 2, "f": 3}, "average", (1,),
     "[[[-0.17313416 0.32377198 -0.34317572] [ 0.02030094 0.14141479 -0.01231585]]"
     " [[ 0.42944926 0.08446996 -0.27290905] [ 0.15077452 0.28911175 0.00123239]]]"),
    ((2, 5, 5, 3), {"stride": 1, "f": 2}, "max", (1, 1),  # public_tests, test 3
     "[[1.19891788 0.74055645 0.07734007] [0.31515939 0.84616065 0.07734007]"
     " [0.69803203 0.84616065 1.2245077 ] [0.69803203 1.12141771 1.2245077 ]]"),
    ((2, 5, 5, 3), {"stride": 1, "f": 2}, "average", (1, 1),
     "[[ 0.11583785 0.34545544 -0.6561907 ] [-0.2334108 0.3364666 -0.69382351]"
     " [ 0.25497093 -0.21741362 -0.07342615] [-0.04092568 -0.01110394 0.12495022]]"),
    ((2, 4, 4, 3), {"stride": 2, "f": 3}, "max", (slice(None),),  # v1 notebook
     "[[[[1.74481176 0.86540763 1.13376944]]] [[[1.13162939 1.51981682 2.18557541]]]]"),
    ((2, 4, 4, 3), {"stride": 2, "f": 3}, "average", (slice(None),),
     "[[[[ 0.02105773 -0.20328806 -0.40389855]]] [[[-0.22154621 0.51716526 0.48155844]]]]"),
]


@pytest.mark.parametrize("case", POOL_FORWARD_PUBLISHED,
                         ids=[f"{c[0]}-f{c[1]['f']}-s{c[1]['stride']}-{c[2]}".replace(" ", "")
                              for c in POOL_FORWARD_PUBLISHED])
def test_pool_forward_matches_published_values(case):
    a_shape, hparameters, mode, index, printed = case
    (A_prev,) = legacy_randn(1, a_shape)
    for A, cache in (course_pool_forward(A_prev, hparameters, mode),
                     pool_forward(A_prev, hparameters, mode=mode)):
        assert type(A) == np.ndarray and A.dtype == np.float64
        assert_printed(A[index], printed)
        assert cache[0] is A_prev and cache[1] is hparameters


@pytest.mark.parametrize("a_shape, hparameters, mode, shape", [
    ((2, 5, 7, 3), {"stride": 2, "f": 2}, "average", (2, 2, 3, 3)),
    ((4, 5, 7, 4), {"stride": 1, "f": 5}, "max", (4, 1, 3, 4)),
    ((2, 5, 5, 3), {"stride": 1, "f": 3}, "max", (2, 3, 3, 3)),
    ((2, 5, 5, 3), {"stride": 2, "f": 3}, "average", (2, 2, 2, 3)),
])
def test_pool_forward_matches_published_shapes(a_shape, hparameters, mode, shape):
    A_prev = np.random.default_rng(0).standard_normal(a_shape)
    assert course_pool_forward(A_prev, hparameters, mode)[0].shape == shape
    assert pool_forward(A_prev, hparameters, mode)[0].shape == shape


@pytest.mark.parametrize("mode, printed", [
    ("max", "[[0. 0.] [5.05844394 -1.68282702] [0. 0.]]"),
    ("average", "[[0.08485462 0.2787552] [1.26461098 -0.25749373] [1.17975636 -0.53624893]]"),
])
def test_pool_backward_matches_published_values(mode, printed):
    # Notebook pool_backward cell: seed 1, A_prev (5, 5, 3, 2), f 2, stride 1, then dA.
    rs = np.random.RandomState(1)
    A_prev = rs.randn(5, 5, 3, 2)
    hparameters = {"stride": 1, "f": 2}
    A, cache = pool_forward(A_prev, hparameters)
    dA = rs.randn(5, 4, 2, 2)
    assert A.shape == dA.shape
    assert_printed(np.mean(dA), "0.145713902729")
    for dA_prev in (course_pool_backward(dA, course_pool_forward(A_prev, hparameters)[1], mode),
                    pool_backward(dA, cache, mode=mode)):
        assert type(dA_prev) == np.ndarray and dA_prev.shape == (5, 5, 3, 2)
        assert_printed(dA_prev[1, 1], printed)


def test_create_mask_from_window_matches_published_masks():
    (x,) = legacy_randn(1, (2, 3))
    assert_printed(x, "[[1.62434536 -0.61175641 -0.52817175] [-1.07296862 0.86540763 -2.3015387]]")
    np.testing.assert_array_equal(create_mask_from_window(x),
                                  [[True, False, False], [False, False, False]])
    x = np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]])
    mask = create_mask_from_window(x)
    assert type(mask) == np.ndarray and mask.shape == x.shape
    np.testing.assert_array_equal(mask, x == np.max(x))
    assert mask.sum() == 1 and mask[2, 1]


@pytest.mark.parametrize("dz, shape", [(2, (2, 2)), (100, (10, 10))])
def test_distribute_value_matches_published_checks(dz, shape):
    a = distribute_value(dz, shape)
    assert type(a) == np.ndarray and a.shape == shape
    # The course asserts exact sums: one division dz / (n_H * n_W) keeps them exact.
    assert np.sum(a) == dz
    np.testing.assert_array_equal(a, dz / np.prod(shape) * np.ones(shape))


# --------------------------------------------------------------------------
# Against cyconv.reference and the course's loops on seeded random inputs
# --------------------------------------------------------------------------

# (A_prev shape, W shape, stride, pad): odd/even filters, stride 1-3, pad 0-2,
# a 1x1 output, a single channel, strides leaving input rows unused.
CONV_CASES = [
    ((2, 5, 7, 4), (3, 3, 4, 8), 2, 1),
    ((3, 6, 6, 3), (2, 2, 3, 5), 1, 0),
    ((1, 7, 5, 2), (3, 3, 2, 4), 1, 1),
    ((2, 4, 4, 3), (2, 2, 3, 6), 2, 2),
    ((2, 9, 8, 1), (5, 5, 1, 3), 3, 2),
    ((1, 3, 3, 2), (3, 3, 2, 1), 1, 0),
]
CONV_IDS = [f"A{a}-W{w}-s{s}-p{p}".replace(" ", "") for a, w, s, p in CONV_CASES]


def _conv_inputs(case, seed=0):
    a_shape, w_shape, stride, pad = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(a_shape), rng.standard_normal(w_shape),
            rng.standard_normal((1, 1, 1, w_shape[3])), {"stride": stride, "pad": pad})


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_forward_matches_reference_and_course_loops(case):
    A_prev, W, b, hparameters = _conv_inputs(case)
    Z, cache = conv_forward(A_prev, W, b, hparameters)
    np.testing.assert_allclose(
        Z, reference.conv2d(A_prev, W, b, stride=case[2], padding=case[3]), **TOL)
    np.testing.assert_allclose(Z, course_conv_forward(A_prev, W, b, hparameters)[0], **TOL)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv_backward_matches_reference_and_course_loops(case):
    A_prev, W, b, hparameters = _conv_inputs(case)
    Z, cache = conv_forward(A_prev, W, b, hparameters)
    dZ = np.random.default_rng(1).standard_normal(Z.shape)
    dA_prev, dW, db = conv_backward(dZ, cache)
    ref = reference.conv2d_backward(dZ, A_prev, W, stride=case[2], padding=case[3])
    course = course_conv_backward(dZ, cache)
    assert db.shape == (1, 1, 1, W.shape[3])
    for got, want_ref, want_course in zip((dA_prev, dW, db), ref, course):
        np.testing.assert_allclose(got, want_ref.reshape(got.shape), **TOL)
        np.testing.assert_allclose(got, want_course, **TOL)


@pytest.mark.parametrize("shape", [(3, 3, 1), (4, 4, 3), (2, 5, 7)])
def test_conv_single_step_matches_numpy_sum_of_products(shape):
    rng = np.random.default_rng(2)
    a_slice_prev, W, b = (rng.standard_normal(shape), rng.standard_normal(shape),
                          rng.standard_normal((1, 1, 1)))
    Z = conv_single_step(a_slice_prev, W, b)
    assert type(Z) == np.float64
    np.testing.assert_allclose(Z, np.sum(a_slice_prev * W) + b.item(), **TOL)


@pytest.mark.parametrize("pad", [0, 1, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_zero_pad_equals_np_pad_and_keeps_dtype(pad, dtype):
    X = np.random.default_rng(3).integers(-5, 5, (2, 3, 4, 2)).astype(dtype)
    X_pad = zero_pad(X, pad)
    assert X_pad.dtype == dtype
    np.testing.assert_array_equal(X_pad, np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))))


# (A_prev shape, f, stride): non-overlapping, overlapping, stride > f (gaps),
# 1x1 windows, a window covering the whole height.
POOL_CASES = [
    ((2, 5, 5, 3), 3, 1),
    ((2, 5, 5, 3), 3, 2),
    ((2, 8, 8, 4), 2, 2),
    ((1, 7, 9, 2), 3, 2),
    ((3, 4, 6, 1), 1, 1),
    ((2, 6, 7, 2), 2, 3),
    ((4, 5, 7, 4), 5, 1),
]
POOL_IDS = [f"A{a}-f{f}-s{s}".replace(" ", "") for a, f, s in POOL_CASES]
MODES = ["max", "average"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_pool_forward_matches_reference_and_course_loops(case, mode):
    a_shape, f, stride = case
    A_prev = np.random.default_rng(4).standard_normal(a_shape)
    hparameters = {"f": f, "stride": stride}
    A, _ = pool_forward(A_prev, hparameters, mode=mode)
    ref_pool = reference.max_pool2d if mode == "max" else reference.avg_pool2d
    ref = ref_pool(A_prev, f, stride=stride)
    np.testing.assert_allclose(A, ref, **TOL)
    np.testing.assert_allclose(A, course_pool_forward(A_prev, hparameters, mode)[0], **TOL)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_pool_backward_average_matches_reference_and_course_loops(case):
    a_shape, f, stride = case
    rng = np.random.default_rng(5)
    A_prev = rng.standard_normal(a_shape)
    A, cache = pool_forward(A_prev, {"f": f, "stride": stride}, mode="average")
    dA = rng.standard_normal(A.shape)
    dA_prev = pool_backward(dA, cache, mode="average")
    np.testing.assert_allclose(
        dA_prev, reference.avg_pool2d_backward(dA, A_prev.shape, f, stride=stride), **TOL)
    np.testing.assert_allclose(dA_prev, course_pool_backward(dA, cache, "average"), **TOL)


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_pool_backward_max_without_ties_matches_reference_and_course_loops(case):
    # Continuous random values never tie, so the course's mask and the
    # reference's first-maximum rule agree.
    a_shape, f, stride = case
    rng = np.random.default_rng(6)
    A_prev = rng.standard_normal(a_shape)
    A, cache = pool_forward(A_prev, {"f": f, "stride": stride})
    dA = rng.standard_normal(A.shape)
    dA_prev = pool_backward(dA, cache)
    np.testing.assert_allclose(
        dA_prev, reference.max_pool2d_backward(dA, A_prev, f, stride=stride), **TOL)
    np.testing.assert_allclose(dA_prev, course_pool_backward(dA, cache, "max"), **TOL)


# --------------------------------------------------------------------------
# The tie rule: the course's mask, on purpose unlike cyconv.max_pool2d_backward
# --------------------------------------------------------------------------

def test_pool_backward_max_gives_every_element_of_an_equal_window_the_gradient():
    A_prev = np.full((1, 2, 2, 1), 0.5)
    _, cache = pool_forward(A_prev, {"f": 2, "stride": 2})
    dA = np.array([3.0]).reshape(1, 1, 1, 1)
    np.testing.assert_array_equal(pool_backward(dA, cache, mode="max")[0, :, :, 0],
                                  [[3.0, 3.0], [3.0, 3.0]])
    np.testing.assert_array_equal(create_mask_from_window(A_prev[0, :, :, 0]),
                                  np.ones((2, 2), bool))
    # cyconv's own backward gives the first maximum only.
    np.testing.assert_array_equal(cyconv.max_pool2d_backward(dA, A_prev, 2)[0, :, :, 0],
                                  [[3.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_pool_backward_max_with_ties_follows_course_mask_not_first_maximum(case):
    a_shape, f, stride = case
    rng = np.random.default_rng(7)
    A_prev = rng.integers(0, 3, a_shape).astype(np.float64)  # ties everywhere
    A, cache = pool_forward(A_prev, {"f": f, "stride": stride})
    dA = rng.standard_normal(A.shape)
    dA_prev = pool_backward(dA, cache, mode="max")
    np.testing.assert_allclose(dA_prev, course_pool_backward(dA, cache, "max"), **TOL)
    if f > 1:
        first_max = cyconv.max_pool2d_backward(dA, A_prev, f, stride=stride)
        assert not np.allclose(dA_prev, first_max)


@pytest.mark.parametrize("x, mask", [
    ([[0.0, 0.0], [0.0, 0.0]], [[True, True], [True, True]]),
    ([[1.0, 3.0], [3.0, 2.0]], [[False, True], [True, False]]),
    ([[-2.0, -1.0], [-1.5, -3.0]], [[False, True], [False, False]]),
], ids=["all-equal", "two-ties", "negative"])
def test_create_mask_from_window_marks_every_maximum(x, mask):
    got = create_mask_from_window(x)
    assert type(got) == np.ndarray and got.dtype == bool
    np.testing.assert_array_equal(got, mask)


@pytest.mark.parametrize("dz, shape", [(1.0, (2, 2)), (-3.0, (3, 3)), (0.7, (1, 4)), (5, (3, 2))])
def test_distribute_value_fills_the_shape_with_equal_shares(dz, shape):
    a = distribute_value(dz, shape)
    assert a.dtype == np.float64 and a.shape == shape
    np.testing.assert_array_equal(a, np.full(shape, dz / (shape[0] * shape[1])))


# --------------------------------------------------------------------------
# Types, caches, inputs untouched, errors, exported names
# --------------------------------------------------------------------------

def test_outputs_are_float64_for_float64_and_integer_input():
    rng = np.random.default_rng(8)
    A_prev, W = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4))
    b = np.zeros((1, 1, 1, 4))
    Z, cache = conv_forward(A_prev, W, b, {"stride": 1, "pad": 1})
    arrays = [Z, *conv_backward(Z, cache)]
    for mode in MODES:
        A, pcache = pool_forward(A_prev, {"f": 2, "stride": 1}, mode=mode)
        arrays += [A, pool_backward(A, pcache, mode=mode)]
    arrays.append(conv_forward(A_prev.astype(np.int64), W.astype(np.int64), b.astype(np.int64),
                               {"stride": 1, "pad": 0})[0])
    assert all(type(a) == np.ndarray and a.dtype == np.float64 for a in arrays)


def test_float32_input_stays_float32():
    rng = np.random.default_rng(9)
    A_prev = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    W = rng.standard_normal((2, 2, 2, 3)).astype(np.float32)
    Z, cache = conv_forward(A_prev, W, np.zeros((1, 1, 1, 3), np.float32), {"stride": 1, "pad": 0})
    assert Z.dtype == np.float32 and all(g.dtype == np.float32 for g in conv_backward(Z, cache))
    assert type(conv_single_step(A_prev[0, :2, :2], W[..., 0], np.float32([[[0]]]))) == np.float32


def test_conv_forward_cache_holds_the_callers_objects():
    A_prev, W, b, hparameters = _conv_inputs(CONV_CASES[0])
    _, cache = conv_forward(A_prev, W, b, hparameters)
    assert type(cache) == tuple and len(cache) == 4
    assert all(got is passed for got, passed in zip(cache, (A_prev, W, b, hparameters)))


@pytest.mark.parametrize("mode", MODES)
def test_pool_forward_cache_holds_the_callers_objects(mode):
    A_prev, hparameters = np.ones((1, 4, 4, 1)), {"f": 2, "stride": 2}
    _, cache = pool_forward(A_prev, hparameters, mode=mode)
    assert type(cache) == tuple and len(cache) == 2
    assert cache[0] is A_prev and cache[1] is hparameters


def _read_only(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _calls():
    # (name, function of fresh read-only inputs) for every compat function.
    rng = np.random.default_rng(10)
    A_prev, W, b = _read_only(rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4)),
                              rng.standard_normal((1, 1, 1, 4)))
    conv_hp, pool_hp = {"stride": 1, "pad": 1}, {"f": 2, "stride": 1}
    (dZ,) = _read_only(rng.standard_normal((2, 5, 5, 4)))
    (dA,) = _read_only(rng.standard_normal((2, 4, 4, 3)))
    return A_prev, [
        ("zero_pad", lambda: zero_pad(A_prev, 2)),
        ("conv_single_step", lambda: conv_single_step(A_prev[0, :3, :3], W[..., 0], b[..., :1])),
        ("conv_forward", lambda: conv_forward(A_prev, W, b, conv_hp)),
        ("conv_backward", lambda: conv_backward(dZ, (A_prev, W, b, conv_hp))),
        ("pool_forward", lambda: pool_forward(A_prev, pool_hp, mode="max")),
        ("pool_backward-max", lambda: pool_backward(dA, (A_prev, pool_hp), mode="max")),
        ("pool_backward-average", lambda: pool_backward(dA, (A_prev, pool_hp), mode="average")),
        ("create_mask_from_window", lambda: create_mask_from_window(A_prev[0, :2, :2, 0])),
    ], (A_prev, W, b, dZ, dA)


@pytest.mark.parametrize("name", [name for name, _ in _calls()[1]])
def test_inputs_are_not_modified(name):
    _, calls, inputs = _calls()
    before = [a.copy() for a in inputs]
    dict(calls)[name]()  # read-only inputs: any write would raise
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["min", "avg", "Max", None])
@pytest.mark.parametrize("function", ["pool_forward", "pool_backward"])
def test_unknown_mode_raises_value_error_naming_mode(function, mode):
    A_prev, hparameters = np.ones((1, 4, 4, 1)), {"f": 2, "stride": 2}
    with pytest.raises(ValueError, match="mode"):
        if function == "pool_forward":
            pool_forward(A_prev, hparameters, mode=mode)
        else:
            pool_backward(np.ones((1, 2, 2, 1)), (A_prev, hparameters), mode=mode)


@pytest.mark.parametrize("call, key", [
    (lambda A, W, b: conv_forward(A, W, b, {"stride": 1}), "pad"),
    (lambda A, W, b: conv_forward(A, W, b, {"pad": 0}), "stride"),
    (lambda A, W, b: conv_backward(np.ones((1, 2, 2, 1)), (A, W, b, {"pad": 0})), "stride"),
    (lambda A, W, b: pool_forward(A, {"stride": 1}), "'f'"),
    (lambda A, W, b: pool_forward(A, {"f": 2}, mode="average"), "stride"),
    (lambda A, W, b: pool_backward(np.ones((1, 2, 2, 1)), (A, {"stride": 2})), "'f'"),
], ids=["conv_forward-pad", "conv_forward-stride", "conv_backward-stride", "pool_forward-f",
        "pool_forward-stride", "pool_backward-f"])
def test_missing_hparameter_raises_key_error_naming_it(call, key):
    A_prev, W, b = np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 1)), np.zeros((1, 1, 1, 1))
    with pytest.raises(KeyError, match=key):
        call(A_prev, W, b)


@pytest.mark.parametrize("hparameters, error, match", [
    ({"stride": 0, "pad": 0}, ValueError, "stride"),
    ({"stride": 1, "pad": -1}, ValueError, "pad"),
    ({"stride": 1.5, "pad": 0}, TypeError, "stride"),
    ({"stride": True, "pad": 0}, TypeError, "stride"),
    ({"stride": 1, "pad": "same"}, TypeError, "pad"),
])
def test_invalid_conv_hparameter_raises_naming_it(hparameters, error, match):
    with pytest.raises(error, match=match):
        conv_forward(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 1)), np.zeros((1, 1, 1, 1)),
                     hparameters)


def test_hparameters_that_are_not_a_dict_raise_type_error():
    with pytest.raises(TypeError, match="hparameters"):
        pool_forward(np.ones((1, 4, 4, 1)), (2, 2))


@pytest.mark.parametrize("call", [
    lambda: conv_backward(np.ones((1, 2, 2, 1)), (np.ones((1, 4, 4, 1)), {"f": 2, "stride": 2})),
    lambda: pool_backward(np.ones((1, 2, 2, 1)), np.ones((1, 4, 4, 1))),
], ids=["conv_backward-pool-cache", "pool_backward-array"])
def test_malformed_cache_raises_value_error(call):
    with pytest.raises(ValueError, match="cache"):
        call()


@pytest.mark.parametrize("a_shape, w_shape, b_shape", [
    ((3, 3, 2), (3, 3, 1), (1, 1, 1)),
    ((3, 3), (3, 3), (1, 1, 1)),
    ((2, 2, 1), (2, 2, 1), (1, 1, 2)),
], ids=["shape-mismatch", "2-D", "two-biases"])
def test_conv_single_step_rejects_inconsistent_shapes(a_shape, w_shape, b_shape):
    with pytest.raises(ValueError, match="conv_single_step"):
        conv_single_step(np.ones(a_shape), np.ones(w_shape), np.ones(b_shape))


@pytest.mark.parametrize("shape", [(2,), (2, 2, 2), (0, 3), "ab"])
def test_distribute_value_rejects_a_shape_that_is_not_a_positive_pair(shape):
    with pytest.raises(ValueError, match="shape"):
        distribute_value(1.0, shape)


def test_star_import_gives_exactly_the_course_functions():
    namespace = {}
    exec("from cyconv.compat import *", namespace)
    assert set(namespace) - {"__builtins__"} == NAMES
    assert sorted(compat.__all__) == sorted(NAMES)
