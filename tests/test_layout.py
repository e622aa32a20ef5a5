"""layout="NCHW": the same kernels on transposed arrays, exactly; and the conversions of _layout.

Under NCHW, :func:`cyconv.conv2d` and :func:`cyconv.conv2d_backward` transpose
their inputs to NHWC once, run the NHWC kernels and transpose the results
back, so every result must equal the transposed NHWC result bit for bit, at
every CPU level, for both dtypes.
"""
import numpy as np
import pytest
from conftest import layouts

import cyconv
from cyconv import _layout, _transpose

TO_NCHW = (0, 3, 1, 2)   # NHWC array -> NCHW array
TO_OIHW = (3, 2, 0, 1)   # HWIO filters -> OIHW filters

CASES = [
    # x (NHWC), w (HWIO), stride, padding
    ((2, 9, 7, 5), (3, 3, 5, 8), 1, 1),
    ((3, 12, 10, 16), (3, 2, 16, 33), 2, "same"),
    ((1, 8, 8, 3), (5, 5, 3, 4), (2, 1), ((2, 1), (0, 3))),
    ((4, 6, 6, 64), (1, 1, 64, 40), 1, 0),
]


def _inputs(case, dtype, seed=0):
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[3]).astype(dtype)
    return x, w, b, stride, padding


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_nchw_forward_equals_transposed_nhwc_exactly(case, dtype, level):
    x, w, b, stride, padding = _inputs(case, dtype)
    z = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    z_nchw = cyconv.conv2d(x.transpose(TO_NCHW), w.transpose(TO_OIHW), b, stride=stride,
                           padding=padding, layout="NCHW")
    assert z_nchw.dtype == z.dtype and z_nchw.flags.c_contiguous
    np.testing.assert_array_equal(z_nchw, z.transpose(TO_NCHW))


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_nchw_gradients_equal_transposed_nhwc_exactly(case, dtype, level):
    x, w, _, stride, padding = _inputs(case, dtype)
    z = cyconv.conv2d(x, w, stride=stride, padding=padding)
    dz = np.random.default_rng(1).standard_normal(z.shape).astype(dtype)
    dx, dw, db = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    args = (dz.transpose(TO_NCHW), x.transpose(TO_NCHW), w.transpose(TO_OIHW))
    dx_n, dw_n, db_n = cyconv.conv2d_backward(*args, stride=stride, padding=padding,
                                              layout="NCHW")
    np.testing.assert_array_equal(dx_n, dx.transpose(TO_NCHW))
    np.testing.assert_array_equal(dw_n, dw.transpose(TO_OIHW))
    np.testing.assert_array_equal(db_n, db)
    assert dx_n.dtype == dw_n.dtype == db_n.dtype == np.dtype(dtype)
    # Each gradient alone, as the full call gives it.
    for g, want in (("dx", dx_n), ("dw", dw_n), ("db", db_n)):
        got = cyconv.conv2d_backward(*args, stride=stride, padding=padding, layout="NCHW",
                                     grads=(g,))
        np.testing.assert_array_equal(got[("dx", "dw", "db").index(g)], want)
        assert sum(a is None for a in got) == 2


def test_nchw_relu_forward_and_backward_equal_nhwc(dtype, level):
    x, w, b, stride, padding = _inputs(CASES[0], dtype)
    a = cyconv.conv2d(x, w, b, stride=stride, padding=padding, activation="relu")
    a_n = cyconv.conv2d(x.transpose(TO_NCHW), w.transpose(TO_OIHW), b, stride=stride,
                        padding=padding, activation="relu", layout="NCHW")
    np.testing.assert_array_equal(a_n, a.transpose(TO_NCHW))
    da = np.random.default_rng(2).standard_normal(a.shape).astype(dtype)
    grads = cyconv.conv2d_backward(da, x, w, stride=stride, padding=padding,
                                   activation="relu", a=a)
    grads_n = cyconv.conv2d_backward(da.transpose(TO_NCHW), x.transpose(TO_NCHW),
                                     w.transpose(TO_OIHW), stride=stride, padding=padding,
                                     activation="relu", a=a_n, layout="NCHW")
    for g, g_n, perm in zip(grads, grads_n, (TO_NCHW, TO_OIHW, (0,))):
        np.testing.assert_array_equal(g_n, g.transpose(perm))


def test_nchw_accepts_any_memory_layout_and_a_4d_bias(dtype):
    x, w, b, stride, padding = _inputs(CASES[0], dtype)
    want = cyconv.conv2d(x, w, b, stride=stride, padding=padding).transpose(TO_NCHW)
    x_n, w_n = np.ascontiguousarray(x.transpose(TO_NCHW)), w.transpose(TO_OIHW)
    for name, x_any in layouts(x_n):
        z = cyconv.conv2d(x_any, w_n, b.reshape(1, -1, 1, 1), stride=stride, padding=padding,
                          layout="NCHW")
        np.testing.assert_array_equal(z, want, err_msg=name)


def test_nchw_writes_into_out():
    x, w, b, stride, padding = _inputs(CASES[0], np.float32)
    want = cyconv.conv2d(x, w, b, stride=stride, padding=padding).transpose(TO_NCHW)
    out = np.empty(want.shape, dtype=np.float32)
    z = cyconv.conv2d(x.transpose(TO_NCHW), w.transpose(TO_OIHW), b, stride=stride,
                      padding=padding, layout="NCHW", out=out)
    assert z is out
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="out must have shape"):
        cyconv.conv2d(x.transpose(TO_NCHW), w.transpose(TO_OIHW), b, stride=stride,
                      padding=padding, layout="NCHW", out=np.empty(want.shape[::-1], np.float32))


def test_nchw_inputs_are_not_modified():
    x, w, b, stride, padding = _inputs(CASES[0], np.float64)
    x_n, w_n = np.ascontiguousarray(x.transpose(TO_NCHW)), np.ascontiguousarray(
        w.transpose(TO_OIHW))
    copies = [a.copy() for a in (x_n, w_n, b)]
    z = cyconv.conv2d(x_n, w_n, b, stride=stride, padding=padding, layout="NCHW")
    dz = np.ones_like(z)
    cyconv.conv2d_backward(dz, x_n, w_n, stride=stride, padding=padding, layout="NCHW")
    for a, c in zip((x_n, w_n, b), copies):
        np.testing.assert_array_equal(a, c)
    assert np.all(dz == 1)


@pytest.mark.parametrize("layout", ["nchw", "NCHW ", "CHWN", None, 1, b"NCHW"])
def test_bad_layout_raises_naming_layout(layout):
    x, w = np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="layout must be 'NHWC'.*or 'NCHW'"):
        cyconv.conv2d(x, w, layout=layout)
    with pytest.raises(ValueError, match="layout must be"):
        cyconv.conv2d_backward(np.ones((1, 2, 2, 2)), x, w, layout=layout)


def test_nhwc_shapes_under_nchw_raise_naming_the_layout():
    x, w = np.ones((2, 8, 8, 3)), np.ones((3, 3, 3, 4))   # NHWC / HWIO
    with pytest.raises(ValueError, match=r"layout='NCHW'.*\(C_out, C_in, f_h, f_w\)"):
        cyconv.conv2d(x, w, layout="NCHW")
    with pytest.raises(ValueError, match=r"layout='NCHW'"):
        cyconv.conv2d_backward(np.ones((2, 4, 6, 6)), x.transpose(TO_NCHW), w,
                               layout="NCHW")


def test_nchw_errors_name_the_argument_and_layout():
    x, w = np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3))
    with pytest.raises(ValueError, match="x must be 4-D"):
        cyconv.conv2d(x[0], w, layout="NCHW")
    with pytest.raises(ValueError, match="w must be 4-D"):
        cyconv.conv2d(x, w[0], layout="NCHW")
    with pytest.raises(ValueError, match=r"dz must have .*\(2, 4, \.\.\.\) with layout='NCHW'"):
        cyconv.conv2d_backward(np.ones((2, 6, 6, 4)), x, w, layout="NCHW")
    with pytest.raises(ValueError, match=r"dz must have .*layout='NCHW'"):
        cyconv.conv2d_backward(np.ones((2, 4, 5, 6)), x, w, layout="NCHW")
    with pytest.raises(ValueError, match="larger than the padded input.*layout='NCHW'"):
        cyconv.conv2d(np.ones((2, 3, 2, 8)), w, layout="NCHW")
    with pytest.raises(TypeError, match="stride"):
        cyconv.conv2d(x, w, stride=1.5, layout="NCHW")


def test_nchw_arrays_without_layout_raise_naming_the_layout():
    x, w = np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3))   # NCHW / OIHW, layout forgotten
    with pytest.raises(ValueError, match=r"layout='NHWC' \(the default; layout='NCHW'"):
        cyconv.conv2d(x, w)
    with pytest.raises(ValueError, match=r"layout='NHWC' \(the default"):
        cyconv.conv2d_backward(np.ones((2, 6, 6, 3)), x, w)


def test_default_layout_is_nhwc():
    import inspect
    for f in (cyconv.conv2d, cyconv.conv2d_backward):
        assert inspect.signature(f).parameters["layout"].default == "NHWC"


# ---------------------------------------------------------------------------
# cyconv._layout and the compiled transpose
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (3, 33, 31, 65), (2, 64, 9, 40),
                                   (1, 1, 100, 3), (0, 3, 4, 5), (2, 0, 4, 5)])
@pytest.mark.parametrize("num_threads", [1, 2, 3])
def test_to_nhwc_and_back_equal_numpys_transpose(shape, num_threads, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y = _layout.to_nhwc(x, num_threads=num_threads)
    np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1))
    assert y.flags.c_contiguous and y.dtype == dtype
    back = _layout.to_nchw(y, num_threads=num_threads)
    np.testing.assert_array_equal(back, x)


def test_conversions_accept_any_memory_layout_and_cast(dtype):
    x = np.random.default_rng(4).standard_normal((3, 5, 6, 7))
    for name, x_any in layouts(x):
        y = _layout.to_nhwc(x_any, dtype=dtype)
        np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1).astype(dtype), err_msg=name)
        assert y.dtype == dtype
    y = _layout.to_nchw(np.arange(24).reshape(1, 2, 3, 4), dtype=np.float32)
    assert y.dtype == np.float32 and y.shape == (1, 4, 2, 3)


def test_filter_conversions_are_inverse():
    w = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)   # OIHW
    hwio = _layout.oihw_to_hwio(w)
    assert hwio.shape == (4, 5, 3, 2) and hwio[1, 2, 0, 1] == w[1, 0, 1, 2]
    np.testing.assert_array_equal(_layout.hwio_to_oihw(hwio), w)


def test_conversions_name_the_argument_in_errors():
    with pytest.raises(ValueError, match="dout must be 4-D"):
        _layout.to_nhwc(np.ones((2, 3)), "dout")
    with pytest.raises(ValueError, match="p must be 4-D"):
        _layout.to_nchw(np.ones((2, 3, 4)), "p")
    with pytest.raises(TypeError, match="w must"):
        _layout.oihw_to_hwio("abc", "w")
    with pytest.raises(ValueError, match="out must be"):
        _layout.to_nhwc(np.ones((1, 2, 3, 4)), out=np.empty((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="layout must be"):
        _layout.parse_layout("NWHC")


def test_compiled_transpose_is_the_same_for_any_thread_count():
    x = np.random.default_rng(5).standard_normal((4, 70, 1000)).astype(np.float32)
    outs = []
    for n in (1, 2, 4):
        out = np.empty((4, 1000, 70), np.float32)
        _transpose.transpose_batched(x, out, n)
        outs.append(out)
    for out in outs:
        np.testing.assert_array_equal(out, x.transpose(0, 2, 1))


def test_conversions_use_threads_from_the_parallel_threshold(monkeypatch):
    x = np.random.default_rng(6).standard_normal((3, 20, 9, 11))
    monkeypatch.setattr(_layout, "PARALLEL_MIN_ELEMENTS", 1)
    np.testing.assert_array_equal(_layout.to_nhwc(x, num_threads=2), x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(_layout.to_nchw(x, num_threads=3), x.transpose(0, 3, 1, 2))
