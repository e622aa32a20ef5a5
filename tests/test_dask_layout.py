"""cyconv.dask with layout="NCHW", dilation and groups.

NCHW: every function's result equals the NHWC call on the transposed arrays,
transposed back, bit for bit (the graph is the NHWC one between lazy
transposes), and the in-memory ``layout="NCHW"`` call. Dilation and groups on
conv2d and conv2d_backward: bitwise equal to the in-memory call for the
forward and dx, dw and db to the rounding of the tree of partial sums.
"""
import numpy as np
import pytest

import cyconv

da = pytest.importorskip("dask.array")
cd = pytest.importorskip("cyconv.dask")

REDUCTION_TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}

# NCHW chunkings of (m, C, H, W) = (3, 6, 13, 11): batch only, spatial tiles,
# ragged tiles with channels split.
NCHW_CHUNKS = {
    "batch": (1, 6, 13, 11),
    "spatial": (3, 6, 5, 4),
    "ragged-channels": (2, (4, 2), (6, 1, 6), (3, 8)),
}


def _close_sum(actual, desired, dtype):
    # dw, db: the tree of partial sums rounds differently; relative to the values' scale
    tol = REDUCTION_TOL[dtype]["rtol"]
    np.testing.assert_allclose(actual, desired, rtol=tol,
                               atol=tol * max(1.0, float(np.max(np.abs(desired)))))


def _nhwc(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 2, 3, 1))


def _nchw(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("chunks", NCHW_CHUNKS.values(), ids=NCHW_CHUNKS.keys())
@pytest.mark.parametrize("geo", [dict(padding="same"), dict(stride=2, padding=1),
                                 dict(padding=2, dilation=2), dict(padding=1, groups=3)],
                         ids=str)
def test_dask_conv2d_nchw_is_the_nhwc_result_transposed(chunks, geo, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 13, 11)).astype(dtype)
    g = geo.get("groups", 1)
    w_oihw = rng.standard_normal((6, 6 // g, 3, 3)).astype(dtype)
    b = rng.standard_normal(w_oihw.shape[0]).astype(dtype)
    z = cd.conv2d(da.from_array(x, chunks=chunks), w_oihw, b, layout="NCHW", **geo)
    assert z.shape == cyconv.conv2d(x, w_oihw, b, layout="NCHW", **geo).shape
    got = z.compute()
    want_nhwc = cyconv.conv2d(_nhwc(x), w_oihw.transpose(2, 3, 1, 0), b, **geo)
    np.testing.assert_array_equal(got, _nchw(want_nhwc))
    np.testing.assert_array_equal(got, cyconv.conv2d(x, w_oihw, b, layout="NCHW", **geo))
    assert got.dtype == dtype


@pytest.mark.parametrize("chunks", NCHW_CHUNKS.values(), ids=NCHW_CHUNKS.keys())
@pytest.mark.parametrize("geo", [dict(padding=1), dict(stride=2, padding=2, dilation=2),
                                 dict(padding=1, groups=2)], ids=str)
def test_dask_conv2d_backward_nchw_is_the_nhwc_gradients_transposed(chunks, geo, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 13, 11)).astype(dtype)
    g = geo.get("groups", 1)
    w_oihw = rng.standard_normal((4, 6 // g, 3, 3)).astype(dtype)
    z = cyconv.conv2d(x, w_oihw, layout="NCHW", **geo)
    dz = rng.standard_normal(z.shape).astype(dtype)
    dx, dw, db = cd.conv2d_backward(da.from_array(dz, chunks=(1, 4, 5, 5)),
                                    da.from_array(x, chunks=chunks), w_oihw, layout="NCHW",
                                    **geo)
    assert dx.shape == x.shape and dw.shape == w_oihw.shape and db.shape == (4,)
    # the NHWC Dask call on the transposed arrays, transposed back: bit for bit
    ex, ew, eb = cd.conv2d_backward(
        da.from_array(_nhwc(dz), chunks=(1, 5, 5, 4)),
        da.from_array(_nhwc(x), chunks=tuple(chunks[i] for i in (0, 2, 3, 1))),
        w_oihw.transpose(2, 3, 1, 0), **geo)
    np.testing.assert_array_equal(dx.compute(), _nchw(ex.compute()))
    np.testing.assert_array_equal(dw.compute(), ew.compute().transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(db.compute(), eb.compute())
    # and the in-memory NCHW call: dx exactly, dw and db to the tree's rounding
    mx, mw, mb = cyconv.conv2d_backward(dz, x, w_oihw, layout="NCHW", **geo)
    np.testing.assert_array_equal(dx.compute(), mx)
    _close_sum(dw.compute(), mw, dtype)
    _close_sum(db.compute(), mb, dtype)


@pytest.mark.parametrize("grads", [("dx",), ("dw",), ("db",), ("dw", "db")], ids=str)
def test_dask_conv2d_backward_nchw_returns_only_the_requested_gradients(grads):
    x = da.ones((2, 3, 6, 6), chunks=(1, 3, 3, 3))
    dz = da.ones((2, 4, 6, 6), chunks=(1, 4, 6, 6))
    out = cd.conv2d_backward(dz, x, np.ones((4, 3, 3, 3)), padding=1, layout="NCHW",
                             grads=grads)
    assert [g is not None for g in out] == [n in grads for n in ("dx", "dw", "db")]


@pytest.mark.parametrize("chunks", NCHW_CHUNKS.values(), ids=NCHW_CHUNKS.keys())
@pytest.mark.parametrize("op,kw", [
    ("max_pool2d", dict(pool_size=3, stride=2, padding=1)),
    ("max_pool2d", dict(pool_size=2, dilation=2, ceil_mode=True)),
    ("avg_pool2d", dict(pool_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", dict(pool_size=2, stride=2, ceil_mode=True)),
], ids=str)
def test_dask_pools_nchw_are_the_nhwc_results_transposed(chunks, op, kw, dtype):
    x = np.random.default_rng(2).standard_normal((3, 6, 13, 11)).astype(dtype)
    kw = dict(kw)
    k = kw.pop("pool_size")
    got = getattr(cd, op)(da.from_array(x, chunks=chunks), k, layout="NCHW", **kw).compute()
    want = getattr(cyconv, op)(_nhwc(x), k, **kw)
    np.testing.assert_array_equal(got, _nchw(want))
    np.testing.assert_array_equal(got, getattr(cyconv, op)(x, k, layout="NCHW", **kw))


@pytest.mark.parametrize("chunks", [(3, 13, 11, 6), (1, 5, 4, 6), (2, (6, 1, 6), (3, 8), 6)],
                         ids=["batch", "spatial", "ragged"])
@pytest.mark.parametrize("geo", [dict(padding=2, dilation=2), dict(padding="same", dilation=(1, 3)),
                                 dict(stride=2, padding=1, groups=3),
                                 dict(padding=1, groups=6)], ids=str)
def test_dask_conv2d_with_dilation_and_groups_matches_the_in_memory_call(chunks, geo, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 13, 11, 6)).astype(dtype)
    g = geo.get("groups", 1)
    w = rng.standard_normal((3, 3, 6 // g, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    xd = da.from_array(x, chunks=chunks)
    z = cd.conv2d(xd, w, b, **geo)
    want = cyconv.conv2d(x, w, b, **geo)
    np.testing.assert_array_equal(z.compute(), want)
    dz = rng.standard_normal(want.shape).astype(dtype)
    dx, dw, db = cd.conv2d_backward(da.from_array(dz, chunks=(1, 4, 4, 6)), xd, w, **geo)
    mx, mw, mb = cyconv.conv2d_backward(dz, x, w, **geo)
    if g == x.shape[3]:
        # the depthwise dx kernel sums a pixel's taps in an order that depends on
        # where the pixel sits in the array (edge or interior path): tiles round differently
        _close_sum(dx.compute(), mx, dtype)
    else:
        np.testing.assert_array_equal(dx.compute(), mx)
    _close_sum(dw.compute(), mw, dtype)
    _close_sum(db.compute(), mb, dtype)


@pytest.mark.parametrize("fn", ["conv2d", "max_pool2d", "avg_pool2d", "conv2d_backward",
                                "global_avg_pool2d", "global_max_pool2d"])
def test_dask_functions_reject_an_unknown_layout_naming_it(fn):
    x = da.ones((1, 4, 4, 2), chunks=2)
    args = {"conv2d": (x, np.ones((3, 3, 2, 2))), "max_pool2d": (x, 2), "avg_pool2d": (x, 2),
            "conv2d_backward": (x, x, np.ones((1, 1, 2, 2))),
            "global_avg_pool2d": (x,), "global_max_pool2d": (x,)}[fn]
    with pytest.raises(ValueError, match="layout"):
        getattr(cd, fn)(*args, layout="NWHC")


def test_dask_conv2d_nchw_channel_mismatch_is_reported_in_nchw_terms():
    x = da.ones((2, 3, 8, 8), chunks=(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"x.shape\[1\].*layout='NCHW'"):
        cd.conv2d(x, np.ones((4, 5, 3, 3)), layout="NCHW")
    with pytest.raises(ValueError, match="dz must have the forward output's shape"):
        cd.conv2d_backward(da.ones((2, 5, 8, 8), chunks=4), x, np.ones((4, 3, 3, 3)),
                           padding=1, layout="NCHW")


def test_dask_nchw_bias_may_be_shaped_1_c_1_1():
    x = da.ones((1, 2, 5, 5), chunks=(1, 2, 3, 3))
    w = np.ones((3, 2, 3, 3))
    b = np.arange(3.0).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(cd.conv2d(x, w, b, layout="NCHW").compute(),
                                  cyconv.conv2d(x.compute(), w, b, layout="NCHW"))
