"""Argument parsing (cyconv._args): padding forms, "same" padding, thread counts."""
import os
import subprocess
import sys

import numpy as np
import pytest

from cyconv import _args


@pytest.mark.parametrize("padding, expected", [
    (0, ((0, 0), (0, 0))),
    (2, ((2, 2), (2, 2))),
    (np.int64(1), ((1, 1), (1, 1))),
    ((1, 3), ((1, 1), (3, 3))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))),
    ([[0, 1], [2, 3]], ((0, 1), (2, 3))),
    ("valid", ((0, 0), (0, 0))),
    ("VALID", ((0, 0), (0, 0))),
])
def test_parse_padding_normalises_every_form(padding, expected):
    assert _args.parse_padding(padding, (9, 9), (3, 3), (1, 1)) == expected


@pytest.mark.parametrize("n, f, s, expected", [
    (7, 3, 1, (1, 1)), (7, 4, 1, (1, 2)), (8, 2, 2, (0, 0)), (7, 2, 2, (0, 1)),
    (7, 3, 2, (1, 1)), (10, 5, 3, (2, 2)), (10, 4, 3, (1, 2)), (5, 1, 1, (0, 0)), (4, 7, 1, (3, 3)),
])
def test_same_padding_follows_tensorflow(n, f, s, expected):
    # TF: out = ceil(n / s); total = max((out - 1) * s + f - n, 0); top = total // 2.
    pads = _args.parse_padding("same", (n, n), (f, f), (s, s))
    assert pads == (expected, expected)
    out = (n + sum(expected) - f) // s + 1
    assert out == -(-n // s)


@pytest.mark.parametrize("bad", [True, 1.0, "1", None, (1,), (1, 2, 3), ((1, 2), 3)])
def test_parse_pair_rejects_non_integers(bad):
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        _args.parse_pair(bad, "stride")


def test_conv_output_size_error_names_axis_and_sizes():
    with pytest.raises(ValueError, match=r"width \(axis 2\): input 3 \+ padding 1\+0 = 4 < window 5"):
        _args.conv_output_size(3, 5, (1, 0), 1, "width (axis 2)", "conv2d")


def test_num_threads_none_is_every_usable_core_and_honours_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    default = _args.resolve_num_threads(None)
    assert 1 <= default <= len(os.sched_getaffinity(0))
    with threadpoolctl.threadpool_limits(1):
        assert _args.resolve_num_threads(None) == 1
    assert _args.resolve_num_threads(None) == default
    assert _args.resolve_num_threads(3) == 3


def test_num_threads_none_honours_omp_num_threads():
    code = "from cyconv import _args; print(_args.resolve_num_threads(None))"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "3"


def test_threadpoolctl_sees_cyconvs_openmp_runtime():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from cyconv import _openmp
    if not _openmp.openmp_enabled():
        pytest.skip("built without OpenMP")
    apis = {info["user_api"] for info in threadpoolctl.threadpool_info()}
    assert "openmp" in apis
