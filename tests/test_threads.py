"""One thread runtime at a time: cyconv.limit_blas_threads and its use in cyconv.layers."""
import contextlib
import pathlib
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import needs_source_tree

import cyconv
from cyconv.layers import (
    SGD,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    ReLU,
    Sequential,
    softmax_cross_entropy,
)

threadpoolctl = pytest.importorskip("threadpoolctl")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _blas_threads():
    # Thread counts of the BLAS libraries cyconv holds: those loaded when it
    # first needed them (NumPy's among them; a BLAS that arrives later with
    # another package, e.g. SciPy's own copy, serves that package only).
    from cyconv import _threads

    ours = {lib.filepath for lib in _threads._blas_controller().lib_controllers}
    return [i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas" and i["filepath"] in ours]


def test_the_held_blas_libraries_include_numpys():
    from cyconv import _threads

    paths = [lib.filepath for lib in _threads._blas_controller().lib_controllers]
    assert paths
    numpy_libs = [i["filepath"] for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    assert set(numpy_libs) <= set(paths)  # NumPy's wheel bundles its BLAS in numpy.libs


@pytest.fixture
def two_blas_threads():
    # Start from a known process-wide setting (the machine may have 1 core).
    if not _blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        yield


def test_limit_blas_threads_holds_blas_to_one_thread_and_restores_it(two_blas_threads):
    with cyconv.limit_blas_threads():
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_nested_blocks_change_nothing_and_the_outer_block_restores(two_blas_threads):
    with cyconv.limit_blas_threads():
        with cyconv.limit_blas_threads(3):
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_limit_blas_threads_restores_after_an_exception(two_blas_threads):
    with pytest.raises(KeyError), cyconv.limit_blas_threads():
        raise KeyError("x")
    assert set(_blas_threads()) == {2}
    with cyconv.limit_blas_threads():  # the nesting depth was reset too
        assert set(_blas_threads()) == {1}


def test_limit_blas_threads_leaves_openmp_threads_alone(two_blas_threads):
    before = cyconv._openmp.openmp_max_threads()
    with cyconv.limit_blas_threads():
        assert cyconv._openmp.openmp_max_threads() == before


def test_blocks_on_other_python_threads_are_independent(two_blas_threads):
    seen = []

    def worker():
        with cyconv.limit_blas_threads():  # not nested in the main thread's block
            seen.append(set(_blas_threads()))

    with cyconv.limit_blas_threads():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen == [{1}]


class _Probe(Layer):
    # Records the BLAS thread counts while the model runs.
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(("forward", set(_blas_threads())))
        return x

    def backward(self, dout):
        self.seen.append(("backward", set(_blas_threads())))
        return dout


def test_sequential_forward_and_backward_run_with_one_blas_thread_and_restore(two_blas_threads):
    probe = _Probe()
    model = Sequential(Conv2D(1, 2, 3, seed=0), ReLU(), probe, Flatten(), Dense(8, 3, seed=1))
    x = np.random.default_rng(0).standard_normal((4, 4, 4, 1)).astype(np.float32)
    _, dlogits = softmax_cross_entropy(model.forward(x), np.array([0, 1, 2, 0]))
    model.backward(dlogits)
    SGD(model, lr=0.1).step()
    assert probe.seen == [("forward", {1}), ("backward", {1})]
    assert set(_blas_threads()) == {2}  # the process-wide setting is unchanged


def test_dense_alone_holds_blas_to_one_thread(monkeypatch):
    from cyconv.layers import _dense

    entered = []

    @contextlib.contextmanager
    def spy():
        entered.append(True)
        with cyconv.limit_blas_threads():
            yield

    monkeypatch.setattr(_dense, "limit_blas_threads", spy)
    layer = Dense(5, 3, seed=0)
    out = layer.forward(np.ones((2, 5), dtype=np.float32))
    layer.backward(np.ones_like(out))
    assert len(entered) == 3  # x @ w; x.T @ dout (backward_params); dout @ w.T


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_dense_backward_writes_the_products_of_the_numpy_composition(x_dtype):
    rng = np.random.default_rng(0)
    layer = Dense(7, 4, seed=0)
    x = rng.standard_normal((5, 7)).astype(x_dtype)
    dout = rng.standard_normal((5, 4)).astype(x_dtype)
    grads_w = layer.grads["w"]
    layer.forward(x)
    dx = layer.backward(dout)
    assert layer.grads["w"] is grads_w  # written in place
    np.testing.assert_array_equal(layer.grads["w"], (x.T @ dout).astype(np.float32))
    np.testing.assert_array_equal(layer.grads["b"], dout.sum(axis=0).astype(np.float32))
    np.testing.assert_array_equal(dx, dout @ layer.params["w"].T)


@needs_source_tree("examples/threads_dropin.py")
def test_the_drop_in_example_times_its_four_variants():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "threads_dropin.py"),
                           "--passes", "1", "--no-torch-import"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stdout
    times = re.findall(r"^(1 thread|2 threads)(, limit_blas_threads)?\s+(\d+\.\d+) ms", proc.stdout,
                       re.MULTILINE)
    assert len(times) == 4 and all(float(t) > 0 for *_, t in times)
