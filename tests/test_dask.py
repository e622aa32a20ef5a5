"""cyconv.dask: lazy Dask arrays with the in-memory kernels' values, bit for bit.

Every result is checked against the in-memory call on the computed input:
forward and dx with ``assert_array_equal`` (the tiles run the same kernels
on the same taps), dw and db (sums of per-tile partials in a tree) to the
rounding of a different summation order, and bitwise reproducible. Most tests
run on Dask's default threaded scheduler; the last group repeats the key
checks on a ``dask.distributed`` LocalCluster of two worker processes.
"""
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, needs_source_tree

import cyconv

da = pytest.importorskip("dask.array")
cd = pytest.importorskip("cyconv.dask")

# dw and db: the tree of partial sums rounds differently from one kernel call.
REDUCTION_TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}

X_SHAPE = (3, 13, 11, 6)

# Chunkings of X_SHAPE: batch only, spatial tiles, ragged tiles, tiles smaller
# than the windows (1 x 1), and channels split too (mixed).
CHUNKINGS = {
    "batch": (1, 13, 11, 6),
    "spatial": (3, 5, 4, 6),
    "ragged": (3, (6, 1, 6), (3, 8), 6),
    "tiny-tiles": (2, 1, 2, 6),
    "mixed-with-channels": (2, (2, 9, 2), 5, (4, 2)),
}

# (window (f_h, f_w), stride, padding): every padding form, strides 1 to 3.
CONV_CASES = [
    ((3, 3), 1, "same"),
    ((3, 3), 2, "same"),
    ((4, 2), 3, "same"),
    ((3, 3), 1, "valid"),
    ((3, 2), 2, 1),
    ((5, 3), (2, 3), (2, 1)),
    ((3, 3), 2, ((0, 3), (2, 0))),
    ((1, 1), 3, 0),
]

# Pools: overlapping windows (3x3 s2), padding as wide as the window (tiles in
# the padding alone), asymmetric windows and padding.
POOL_CASES = [
    ((2, 2), None, 0),
    ((3, 3), 2, 1),
    ((3, 3), 1, "same"),
    ((3, 2), (2, 1), ((1, 2), (0, 1))),
    ((2, 2), 1, ((2, 0), (0, 2))),
    ((4, 4), 3, "valid"),
]


def _x(dtype, shape=X_SHAPE, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _dask(x, chunking):
    return da.from_array(x, chunks=CHUNKINGS[chunking])


def _filters(f, dtype, c_in=X_SHAPE[3], c_out=5, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((*f, c_in, c_out)).astype(dtype),
            rng.standard_normal(c_out).astype(dtype))


# --------------------------------------------------------------------------
# Forward: bitwise equal to the in-memory call
# --------------------------------------------------------------------------

@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("f, stride, padding", CONV_CASES)
def test_conv2d_equals_in_memory_bitwise_for_any_chunking(dtype, chunking, f, stride, padding):
    x = _x(dtype)
    w, b = _filters(f, dtype)
    xd = _dask(x, chunking)
    z = cd.conv2d(xd, w, b, stride=stride, padding=padding)
    want = cyconv.conv2d(x, w, b, stride=stride, padding=padding)
    assert isinstance(z, da.Array)
    assert z.shape == want.shape and z.dtype == want.dtype
    assert z.chunks[0] == xd.chunks[0] and z.chunks[3] == (w.shape[3],)
    np.testing.assert_array_equal(z.compute(), want)


@pytest.mark.parametrize("op", ["max", "avg", "avg-exclude-pad"])
@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("pool_size, stride, padding", POOL_CASES)
def test_pool2d_equals_in_memory_bitwise_for_any_chunking(dtype, op, chunking, pool_size,
                                                          stride, padding):
    x = _x(dtype)
    kw = dict(stride=stride, padding=padding)
    if op == "avg-exclude-pad":
        op, kw["count_include_pad"] = "avg", False
    xd = _dask(x, chunking)
    p = getattr(cd, f"{op}_pool2d")(xd, pool_size, **kw)
    want = getattr(cyconv, f"{op}_pool2d")(x, pool_size, **kw)
    assert isinstance(p, da.Array)
    assert p.shape == want.shape and p.dtype == want.dtype
    # Batch and channel chunks stay as they are (pooling works per channel).
    assert p.chunks[0] == xd.chunks[0] and p.chunks[3] == xd.chunks[3]
    np.testing.assert_array_equal(p.compute(), want)


def test_tiles_are_exact_at_every_cpu_level(level, dtype):
    # Narrow tiles take other vector paths of the kernels than whole rows do.
    x = _x(dtype)
    xd = _dask(x, "tiny-tiles")
    w, b = _filters((3, 3), dtype)
    np.testing.assert_array_equal(cd.conv2d(xd, w, b, stride=2, padding="same").compute(),
                                  cyconv.conv2d(x, w, b, stride=2, padding="same"))
    xd = _dask(x, "mixed-with-channels")
    for op in ("max", "avg"):
        np.testing.assert_array_equal(
            getattr(cd, f"{op}_pool2d")(xd, 3, stride=2, padding=1).compute(),
            getattr(cyconv, f"{op}_pool2d")(x, 3, stride=2, padding=1))
    dz = np.random.default_rng(3).standard_normal((3, 7, 6, 5)).astype(dtype)
    dx = cd.conv2d_backward(da.from_array(dz, chunks=2), xd, w, stride=2, padding="same",
                            grads=("dx",))[0]
    np.testing.assert_array_equal(dx.compute(), cyconv.conv2d_backward(
        dz, x, w, stride=2, padding="same", grads=("dx",))[0])


def test_same_convolution_with_odd_kernel_keeps_the_chunks():
    x = da.from_array(_x(np.float32, (4, 20, 18, 3)), chunks=(2, (7, 7, 6), (9, 9), 3))
    z = cd.conv2d(x, np.ones((3, 5, 3, 8), np.float32), padding="same")
    assert z.chunks == (x.chunks[0], x.chunks[1], x.chunks[2], (8,))


def test_strided_pool_divides_the_chunks_by_the_stride():
    x = da.zeros((2, 16, 16, 4), chunks=(1, 8, 4, 2))
    assert cd.max_pool2d(x, 2).chunks == ((1, 1), (4, 4), (2, 2, 2, 2), (2, 2))
    assert cd.max_pool2d(x, 3, stride=2, padding=1).chunks == ((1, 1), (4, 4), (2, 2, 2, 2),
                                                              (2, 2))


def test_each_output_tile_is_one_task_after_the_halo_gathering():
    x = da.zeros((2, 32, 32, 3), chunks=(1, 8, 8, 3))
    z = cd.conv2d(x, np.ones((3, 3, 3, 4)), padding="same")
    assert z.numblocks == (2, 4, 4, 1)
    # One kernel task per tile, and the gathering costs a few tasks per tile.
    assert len(dict(z.__dask_graph__())) < 20 * np.prod(z.numblocks)


def test_empty_batch_and_windows_wholly_in_the_padding(dtype):
    x = _x(dtype, (0, 6, 6, 2))
    z = cd.max_pool2d(da.from_array(x, chunks=(1, 2, 2, 2)), 2, stride=1, padding=2)
    assert z.compute().shape == cyconv.max_pool2d(x, 2, stride=1, padding=2).shape
    x = _x(dtype, (2, 6, 6, 2))
    for padding in (2, 3):  # whole tiles of windows in the padding (max: -inf)
        got = cd.max_pool2d(da.from_array(x, chunks=(1, 2, 2, 1)), 2, stride=1, padding=padding)
        np.testing.assert_array_equal(got.compute(),
                                      cyconv.max_pool2d(x, 2, stride=1, padding=padding))


def test_results_are_lazy_until_computed(monkeypatch):
    calls = []
    kernel_calls = []
    monkeypatch.setattr(cd.conv, "conv2d", lambda *a, **k: kernel_calls.append(1))

    def source(block):
        calls.append(1)
        return block

    x = da.ones((2, 8, 8, 3), chunks=(1, 4, 4, 3)).map_blocks(
        source, meta=np.empty((0, 0, 0, 0)))  # with meta, Dask does not call source to guess it
    w = np.ones((3, 3, 3, 2))
    z = cd.conv2d(x, w, padding=1)
    p = cd.avg_pool2d(cd.max_pool2d(z, 2), 2)
    dx, dw, db = cd.conv2d_backward(da.ones(z.shape, chunks=4), x, w, padding=1)
    assert calls == [] and kernel_calls == []  # nor is a kernel called to guess the meta
    assert all(isinstance(a, da.Array) for a in (z, p, dx, dw, db))
    monkeypatch.undo()
    p.compute()
    assert calls


def test_dtype_follows_the_in_memory_promotion():
    x32 = da.ones((1, 5, 5, 2), dtype=np.float32, chunks=(1, 2, 2, 2))
    w64 = np.ones((3, 3, 2, 1))
    assert cd.conv2d(x32, w64.astype(np.float32)).dtype == np.float32
    assert cd.conv2d(x32, w64).dtype == np.float64
    z = cd.conv2d(da.ones((1, 5, 5, 2), dtype=np.int32, chunks=2), w64.astype(np.float32))
    assert z.dtype == np.float64 and z.compute().dtype == np.float64
    assert cd.max_pool2d(x32.astype(np.float16), 2).compute().dtype == np.float32


def test_inputs_are_not_modified(dtype):
    x = _x(dtype, (2, 9, 9, 3))
    x_copy = x.copy()
    w, b = _filters((3, 3), dtype, c_in=3)
    w_copy = w.copy()
    xd = da.from_array(x, chunks=(1, 4, 4, 3))
    z = cd.conv2d(xd, w, b, stride=2, padding="same")
    dz = da.ones_like(z)
    da.compute(z, cd.max_pool2d(xd, 3, stride=2, padding=1),
               *cd.conv2d_backward(dz, xd, w, stride=2, padding="same"))
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w, w_copy)


def test_num_threads_is_passed_to_every_task():
    x = _x(np.float64, (2, 9, 9, 3))
    w, _ = _filters((3, 3), np.float64, c_in=3)
    z1 = cd.conv2d(da.from_array(x, chunks=(1, 4, 4, 3)), w, num_threads=1).compute()
    np.testing.assert_array_equal(z1, cyconv.conv2d(x, w))


# --------------------------------------------------------------------------
# Backward: dx bitwise per chunk; dw, db a reproducible tree of partial sums
# --------------------------------------------------------------------------

def _backward_case(dtype, chunking, f, stride, padding, seed=2):
    x = _x(dtype)
    w, _ = _filters(f, dtype)
    z = cyconv.conv2d(x, w, stride=stride, padding=padding)
    dz = np.random.default_rng(seed).standard_normal(z.shape).astype(dtype)
    return x, w, dz, _dask(x, chunking), da.from_array(dz, chunks=(2, 3, 4, 2))


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("f, stride, padding", CONV_CASES)
def test_conv2d_backward_dx_bitwise_dw_db_to_rounding(dtype, chunking, f, stride, padding):
    x, w, dz, xd, dzd = _backward_case(dtype, chunking, f, stride, padding)
    dx, dw, db = cd.conv2d_backward(dzd, xd, w, stride=stride, padding=padding)
    want = cyconv.conv2d_backward(dz, x, w, stride=stride, padding=padding)
    assert dx.chunks == xd.chunks and dw.shape == w.shape and db.shape == (w.shape[3],)
    got = da.compute(dx, dw, db)
    np.testing.assert_array_equal(got[0], want[0])
    for g, r in zip(got[1:], want[1:]):
        assert g.dtype == r.dtype
        np.testing.assert_allclose(g, r, **REDUCTION_TOL[dtype])


def test_conv2d_backward_reduction_is_reproducible_bitwise(dtype):
    x, w, dz, xd, dzd = _backward_case(dtype, "mixed-with-channels", (3, 3), 2, "same")
    first = da.compute(*cd.conv2d_backward(dzd, xd, w, stride=2, padding="same"))
    again = da.compute(*cd.conv2d_backward(dzd, xd, w, stride=2, padding="same"))
    single = da.compute(*cd.conv2d_backward(dzd, xd, w, stride=2, padding="same"),
                        scheduler="synchronous")
    for a, b, c in zip(first, again, single):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("grads", [("dx",), ("dw",), ("db",), ("dw", "db"), "db"])
def test_conv2d_backward_grads_subset_gives_none_for_the_others(grads):
    x, w, dz, xd, dzd = _backward_case(np.float64, "spatial", (3, 3), 1, 1)
    got = cd.conv2d_backward(dzd, xd, w, padding=1, grads=grads)
    want = cyconv.conv2d_backward(dz, x, w, padding=1, grads=grads)
    for g, r in zip(got, want):
        assert (g is None) == (r is None)
        if g is not None:
            np.testing.assert_allclose(g.compute(), r, **REDUCTION_TOL[np.float64])


# --------------------------------------------------------------------------
# Errors: at graph construction, with the in-memory messages
# --------------------------------------------------------------------------

def _message(fn, *args, **kw):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kw)
    return info.type, str(info.value)


@pytest.mark.parametrize("kw", [
    dict(padding=-1), dict(padding="full"), dict(stride=0), dict(padding=((1, 2), 3)),
    dict(num_threads=0)])
def test_bad_arguments_raise_at_once_with_the_in_memory_message(kw):
    x = _x(np.float64, (1, 6, 6, 2))
    w = np.ones((3, 3, 2, 1))
    assert (_message(cd.conv2d, da.from_array(x, chunks=3), w, **kw)
            == _message(cyconv.conv2d, x, w, **kw))
    assert (_message(cd.avg_pool2d, da.from_array(x, chunks=3), 2, **kw)
            == _message(cyconv.avg_pool2d, x, 2, **kw))


def test_geometry_errors_name_the_argument_and_axis():
    xd = da.zeros((1, 6, 6, 2), chunks=3)
    with pytest.raises(ValueError, match=r"w has 3 input channels"):
        cd.conv2d(xd, np.ones((3, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"window is larger than the padded input along height"):
        cd.max_pool2d(xd, (7, 2))
    with pytest.raises(ValueError, match=r"x must be 4-D, got 3-D"):
        cd.conv2d(xd[0], np.ones((3, 3, 2, 1)))
    with pytest.raises(ValueError, match=r"dz must have the forward output's shape"):
        cd.conv2d_backward(da.zeros((1, 6, 6, 1)), xd, np.ones((3, 3, 2, 1)))
    with pytest.raises(TypeError, match=r"x must hold real numbers"):
        cd.max_pool2d(xd.astype(np.complex64), 2)
    with pytest.raises(ValueError, match=r"grads may only name"):
        cd.conv2d_backward(da.zeros((1, 4, 4, 1)), xd, np.ones((3, 3, 2, 1)), grads=("dy",))


def test_unknown_chunk_sizes_are_refused_with_the_fix():
    x = da.ones((16, 6, 6, 2), chunks=4)
    x = x[x[:, 0, 0, 0] > 0]  # boolean indexing: chunk sizes unknown
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        cd.max_pool2d(x, 2)


def test_dask_is_optional_for_cyconv_and_named_in_the_import_error():
    code = ("import sys; import cyconv; assert 'dask' not in sys.modules\n"
            "sys.modules['dask'] = None\n"
            "try:\n    import cyconv.dask\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert 'pip install "cyconv[dask]"' in out


# --------------------------------------------------------------------------
# The same on a dask.distributed cluster of two worker processes
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    # Not the default scheduler: the other tests keep the threaded one.
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def test_distributed_conv2d_and_pools_equal_in_memory_bitwise(client, dtype):
    x = _x(dtype)
    xd = _dask(x, "mixed-with-channels")
    w, b = _filters((3, 3), dtype)
    z = cd.conv2d(xd, w, b, stride=2, padding="same")
    p = cd.max_pool2d(xd, 3, stride=2, padding=1)
    q = cd.avg_pool2d(xd, (3, 2), stride=(2, 1), padding=((1, 2), (0, 1)),
                      count_include_pad=False)
    got = client.gather(client.compute([z, p, q]))
    np.testing.assert_array_equal(got[0], cyconv.conv2d(x, w, b, stride=2, padding="same"))
    np.testing.assert_array_equal(got[1], cyconv.max_pool2d(x, 3, stride=2, padding=1))
    np.testing.assert_array_equal(got[2], cyconv.avg_pool2d(
        x, (3, 2), stride=(2, 1), padding=((1, 2), (0, 1)), count_include_pad=False))


def test_distributed_backward_equals_the_threaded_scheduler_bitwise(client, dtype):
    x, w, dz, xd, dzd = _backward_case(dtype, "ragged", (3, 3), 2, ((0, 3), (2, 0)))
    grads = cd.conv2d_backward(dzd, xd, w, stride=2, padding=((0, 3), (2, 0)))
    remote = client.gather(client.compute(list(grads)))
    local = da.compute(*grads)
    want = cyconv.conv2d_backward(dz, x, w, stride=2, padding=((0, 3), (2, 0)))
    np.testing.assert_array_equal(remote[0], want[0])
    for r, loc, m in zip(remote, local, want):
        np.testing.assert_array_equal(r, loc)
    for r, m in zip(remote[1:], want[1:]):
        np.testing.assert_allclose(r, m, **REDUCTION_TOL[dtype])


# --------------------------------------------------------------------------
# The example
# --------------------------------------------------------------------------

@needs_source_tree("examples/dask_features.py")
def test_example_extracts_features_and_reports_throughput(tmp_path):
    cmd = [sys.executable, str(ROOT / "examples" / "dask_features.py"), "--images", "12",
           "--size", "32", "--chunk", "4", "--workers", "1", "--memory-limit", "512MB",
           "--store", str(tmp_path / "store")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "images/s" in proc.stdout and "peak memory" in proc.stdout
