"""cyconv.bench (the comparison benchmark) and the asv suites: they run and tell the truth."""
import importlib
import json
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import needs_source_tree

import cyconv
from cyconv import bench

ROOT = pathlib.Path(__file__).resolve().parent.parent
HAS_TORCH = bench.import_torch() is not None


def _results_table(text):
    """Header and rows (dicts) of the Markdown results table printed by main()."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| shape |"))
    cells = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in lines[start:] if line.startswith("|")]
    head, rows = cells[0], cells[2:]
    return head, [dict(zip(head, row)) for row in rows]


def test_shape_table_is_the_issue_table():
    conv = {name: (c["x"], c["w"], c["stride"], c["padding"])
            for name, c in bench.SHAPES.items() if c["kind"] == "conv"}
    pool = {name: (c["x"], c["pool_size"], c["stride"], c["padding"])
            for name, c in bench.SHAPES.items() if c["kind"] == "pool"}
    assert conv == {
        "S1": ((10, 5, 7, 4), (3, 3, 4, 8), 2, 1),
        "S2": ((64, 64, 64, 3), (5, 5, 3, 8), 1, 2),
        "S3": ((64, 14, 14, 6), (5, 5, 6, 16), 1, 0),
        "S4": ((8, 56, 56, 64), (3, 3, 64, 64), 1, 1),
        "S5": ((8, 224, 224, 3), (7, 7, 3, 64), 2, 3),
        "S6": ((8, 14, 14, 256), (3, 3, 256, 256), 1, 1),
        "S7": ((8, 28, 28, 128), (1, 1, 128, 256), 1, 0),
    }
    assert pool == {
        "P1": ((8, 56, 56, 64), 2, 2, 0),
        "P2": ((8, 112, 112, 64), 3, 2, 0),
        "P3": ((64, 64, 64, 8), 8, 8, 0),
    }
    assert [n for n, c in bench.SHAPES.items() if c["reference"]] == ["S1", "S3", "P1", "P3"]


def test_conv_flops_is_2_m_oh_ow_cout_fh_fw_cin():
    assert bench.conv_output_hw("S1") == (3, 4)
    assert bench.conv_flops("S1") == 2 * 10 * 3 * 4 * 8 * 3 * 3 * 4
    assert bench.conv_output_hw("S5") == (112, 112)
    assert bench.conv_flops("S5") == 2 * 8 * 112 * 112 * 64 * 7 * 7 * 3
    assert bench.conv_output_hw("P2") == (55, 55)


@pytest.mark.parametrize("name", ["S1", "S3"])
def test_backward_halves_are_exactly_conv2d_backward(name, dtype):
    case = bench.SHAPES[name]
    data = bench.make_inputs(name, dtype)
    kw = dict(stride=case["stride"], padding=case["padding"], num_threads=2)
    dx, dw, db = cyconv.conv2d_backward(data["dz"], data["x"], data["w"], **kw)
    dx_half = bench.conv2d_backward_part("dx", data["dz"], data["x"], data["w"], **kw)
    dw_half, db_half = bench.conv2d_backward_part("dw", data["dz"], data["x"], data["w"], **kw)
    assert dx_half.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dx_half, dx)
    np.testing.assert_array_equal(dw_half, dw)
    np.testing.assert_array_equal(db_half, db)


def test_make_inputs_gives_forward_output_shaped_gradients():
    conv = bench.make_inputs("S1", "float32")
    assert {k: v.shape for k, v in conv.items()} == {
        "x": (10, 5, 7, 4), "w": (3, 3, 4, 8), "b": (8,), "dz": (10, 3, 4, 8)}
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in conv.values())
    pool = bench.make_inputs("P3", "float64")
    assert pool["dp"].shape == cyconv.max_pool2d(pool["x"], 8).shape == (64, 8, 8, 8)


def test_select_cases_filters_and_keeps_table_order():
    assert bench.select_cases(["P1", "S1"], ["dx", "max_fwd", "max_fb"]) == [
        ("S1", "dx"), ("P1", "max_fwd"), ("P1", "max_fb")]
    assert len(bench.select_cases(bench.SHAPE_GROUPS["standard"])) == 7 * 3 + 3 * 4
    # the feature rows: D4, T1, N4, N6 with fwd, dx, dw; G1-G3 with fwd, fb
    assert len(bench.select_cases()) == 7 * 3 + 3 * 4 + 4 * 3 + 3 * 2


def test_interleave_alternates_batches_and_caps_the_slow_peer():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"),
           "ref": lambda: calls.append("ref")}
    samples = bench.interleave(fns, target=0.0, min_rounds=4, max_rounds=10, batch=0.0,
                               capped={"ref": 1})
    assert [len(samples[k]) for k in ("a", "b", "ref")] == [4, 4, 1]
    # two warm-up calls each, then rounds a,b,ref / b,a / a,b / b,a (one call per batch)
    assert calls == ["a", "a", "b", "b", "ref", "ref", "a", "b", "ref",
                     "b", "a", "a", "b", "b", "a"]
    assert all(t >= 0 for ts in samples.values() for t in ts)


def test_gemm_rate_reports_2n3_over_median_time():
    g = bench.gemm_rate("float64", 1, n=64, repeats=3)
    assert (g["dtype"], g["threads"], g["n"]) == ("float64", 1, 64)
    assert g["gflops"] == pytest.approx(2 * 64 ** 3 / (g["ms"] / 1e3) / 1e9)


def test_quick_run_prints_a_row_per_case_and_json_medians(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--shapes", "S1,P1", "--dtype", "float32", "--threads", "1",
                       "--json", str(out)]) == 0
    head, rows = _results_table(capsys.readouterr().out)
    expected = [("S1", "fwd"), ("S1", "dx"), ("S1", "dw"), ("P1", "max_fwd"),
                ("P1", "max_fb"), ("P1", "avg_fwd"), ("P1", "avg_fb")]
    assert [(r["shape"], r["op"]) for r in rows] == expected
    assert {(r["dtype"], r["threads"]) for r in rows} == {("float32", "1")}
    assert ("torch ms" in head) == HAS_TORCH
    report = json.loads(out.read_text())
    assert report["machine"]["numpy"] == np.__version__
    assert [(g["dtype"], g["threads"]) for g in report["gemm"]] == [("float32", 1)]
    results = report["results"]
    assert [(r["shape"], r["op"]) for r in results] == expected
    for r, row in zip(results, rows):
        assert r["rounds"] >= 3 and len(r["cyconv_samples_ms"]) == r["rounds"]
        assert r["cyconv_ms"] == pytest.approx(np.median(r["cyconv_samples_ms"]))
        assert r["cyconv_ms"] > 0 and row["cyconv ms"] == bench._ms(r["cyconv_ms"])
        assert r["agree"], r["max_rel_diff"]
        assert "other_cpu" in r
        # the reference: S1 forward and the P1 pools, never the backward halves
        assert (r["reference_ms"] is not None) == (r["op"] not in ("dx", "dw"))
        if HAS_TORCH:
            assert r["torch_ms"] > 0
            assert r["speedup_vs_torch"] == pytest.approx(r["torch_ms"] / r["cyconv_ms"])
            assert set(r["max_rel_diff"]) >= {"torch"}
        if r["shape"] == "S1":
            assert r["gflops"] == pytest.approx(bench.conv_flops("S1") / r["cyconv_ms"] / 1e6)
            assert r["gemm_fraction"] == pytest.approx(r["gflops"] / report["gemm"][0]["gflops"])
            assert row["GFLOP/s"] == f"{r['gflops']:.1f}"
        else:
            assert "gflops" not in r and row["GFLOP/s"] == "—"


def test_without_torch_the_table_has_cyconv_and_reference(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" raises ImportError
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--shapes", "S1", "--ops", "fwd", "--dtype", "float64",
                       "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    head, rows = _results_table(text)
    assert "torch ms" not in head and "reference ms" in head
    assert [(r["shape"], r["op"], r["dtype"]) for r in rows] == [("S1", "fwd", "float64")]
    assert "torch not installed" in text
    result = json.loads(out.read_text())["results"][0]
    assert result["torch_ms"] is None and result["reference_ms"] > result["cyconv_ms"] > 0
    assert result["max_rel_diff"]["reference"] < 1e-10
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--shapes", "S1", "--plot", str(tmp_path / "x.png")])


@pytest.mark.parametrize("argv", [["--shapes", "S9"], ["--ops", "bwd"], ["--dtype", "float16"],
                                  ["--threads", "0"], ["--shapes", "S1", "--ops", "max"]])
def test_bad_filters_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    results = [dict(shape=s, op=op, dtype=d, threads=t, speedup_vs_torch=v)
               for s, op, v in [("S1", "fwd", 2.0), ("S1", "dx", 0.5), ("P1", "max_fwd", 1.3)]
               for d in ("float32", "float64") for t in (1, 2)]
    path = tmp_path / "speedup.png"
    bench.plot({"results": results}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- asv -------------------------------------------------------------------

def _asv_conf():
    text = (ROOT / "asv.conf.json").read_text()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))  # asv allows // comments


_ASV_FILES = needs_source_tree("asv.conf.json", "benchmarks/benchmark_conv.py", ".gitignore")


@_ASV_FILES
def test_asv_conf_uses_benchmarks_and_keeps_its_output_out_of_git():
    conf = _asv_conf()
    assert (conf["project"], conf["repo"], conf["benchmark_dir"]) == ("cyconv", ".", "benchmarks")
    ignored = (ROOT / ".gitignore").read_text().split()
    for key in ("env_dir", "results_dir", "html_dir"):
        assert conf[key].startswith(".asv/")
    assert ".asv/" in ignored


@pytest.fixture(scope="module")
def suites():
    sys.path.insert(0, str(ROOT))
    try:
        yield {name: importlib.import_module(f"benchmarks.{name}")
               for name in ("benchmark_conv", "benchmark_pool")}
    finally:
        sys.path.remove(str(ROOT))


@_ASV_FILES
def test_asv_suites_cover_every_kernel_on_the_shape_table(suites):
    conv, pool = suites["benchmark_conv"].Conv2d, suites["benchmark_pool"]
    assert conv.params[:2] == (["S1", "S2", "S3", "S4", "S5", "S6", "S7"], ["float32", "float64"])
    assert conv.params[2][0] == 1 and conv.param_names == ("shape", "dtype", "threads")
    assert {m for m in dir(conv) if m.split("_")[0] in ("time", "peakmem", "track")} == {
        "time_forward", "time_backward", "peakmem_forward", "peakmem_backward",
        "track_forward_gflops", "track_backward_gflops"}
    for cls in (pool.MaxPool2d, pool.AvgPool2d):
        assert cls.params[0] == ["P1", "P2", "P3"]
        assert {m for m in dir(cls) if m.startswith("time_")} == {"time_forward", "time_backward"}
    assert {m for m in dir(pool.MaxPool2dIndices) if m.startswith("time_")} == {
        "time_forward_backward"}


@_ASV_FILES
def test_asv_suites_run_on_the_smallest_shapes(suites):
    conv = suites["benchmark_conv"].Conv2d()
    conv.setup("S1", "float64", 1)
    for method in ("time_forward", "time_backward", "peakmem_forward", "peakmem_backward"):
        assert getattr(conv, method)("S1", "float64", 1) is None
    for method in ("track_forward_gflops", "track_backward_gflops"):
        assert 0 < getattr(conv, method)("S1", "float64", 1) < 1e4
    pool = suites["benchmark_pool"]
    for cls in (pool.MaxPool2d, pool.AvgPool2d):
        suite = cls()
        suite.setup("P1", "float32", 1)
        assert suite.x.shape == (8, 56, 56, 64) and suite.dp.shape == (8, 28, 28, 64)
        suite.time_forward("P1", "float32", 1)
        suite.time_backward("P1", "float32", 1)
    suite = pool.MaxPool2dIndices()
    suite.setup("P1", "float32", 1)
    suite.time_forward_backward("P1", "float32", 1)


@_ASV_FILES
def test_asv_check_finds_no_problems():
    pytest.importorskip("asv")
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def test_other_cpu_reports_cores_used_by_other_processes():
    watch = bench.OtherCPU()
    assert watch.cores() is None  # too short a window to say anything
    if watch.start is None:
        pytest.skip("no /proc/stat")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.1:  # our own busy loop is not "other"
        pass
    cores = watch.cores()
    assert 0.0 <= cores <= (bench.all_cores() or 1) + 0.5


# --- CPU levels (--level) ----------------------------------------------------

from cyconv import _bench_levels, _bench_peers, _bench_roofline  # noqa: E402

HAS_ORT = _bench_peers.import_onnxruntime() is not None


def test_level_env_limits_every_library_to_the_level():
    base = {"PATH": "/bin", "ATEN_CPU_CAPABILITY": "avx512", "OPENBLAS_CORETYPE": "Zen"}
    expected = {
        "baseline": ("baseline", "default", "SSE41", "Prescott"),
        "x86-64-v3": ("x86-64-v3", "avx2", "AVX2", "Haswell"),
        "x86-64-v4": ("x86-64-v4", "avx512", "AVX512_CORE", "SkylakeX"),
    }
    assert set(_bench_levels.LEVEL_SETTINGS) == set(cyconv._dispatch.LEVELS) == set(expected)
    for level, values in expected.items():
        env = _bench_levels.level_env(level, base)
        keys = ("CYCONV_CPU_LEVEL", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                "OPENBLAS_CORETYPE")
        assert tuple(env[k] for k in keys) == values
        assert env["PATH"] == "/bin"  # the rest of the environment is kept
    assert base["ATEN_CPU_CAPABILITY"] == "avx512"  # not modified


def test_parse_levels_all_is_every_level_this_cpu_runs():
    assert _bench_levels.parse_levels("all") == list(cyconv._dispatch.cpu_levels())
    assert _bench_levels.parse_levels("baseline, baseline") == ["baseline"]
    with pytest.raises(ValueError, match="unknown CPU level 'v5'"):
        _bench_levels.parse_levels("v5")
    missing = [lv for lv in cyconv._dispatch.LEVELS if lv not in cyconv._dispatch.cpu_levels()]
    for level in missing:
        with pytest.raises(ValueError, match="does not run"):
            _bench_levels.parse_levels(level)


def test_child_argv_keeps_the_filters_and_drops_level_json_plot():
    args = bench._parser().parse_args(
        ["--level", "all", "--shapes", "S4,P2", "--dtype", "float32", "--threads", "1",
         "--peers", "torch,onnxruntime", "--quick", "--no-reference", "--json", "x.json",
         "--plot", "x.png"])
    assert _bench_levels.child_argv(args) == [
        "--shapes", "S4,P2", "--dtype", "float32", "--threads", "1",
        "--peers", "torch,onnxruntime", "--quick", "--no-reference"]


_VERBOSE = """\
onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80afa71049cd69a3df32adcccb623b12cd7baa22)
onednn_verbose,v1,info,cpu,isa:Intel AVX2
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:acdb::f0,,64x64x3x3,2.5
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx2,forward_training,src:f32,,mb2,0.1
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_bwd:avx2+brg_conv_fwd:avx2,backward_data,x
onednn_verbose,v1,primitive,exec,cpu,convolution,x64:gemm:jit,backward_weights,src:f32,,mb2,0.1
"""


def test_check_level_says_which_settings_took_effect():
    onednn = _bench_levels.parse_onednn_verbose(_VERBOSE)
    assert onednn == {"isa": "Intel AVX2", "convolution": {
        "forward_training": "brg_conv_fwd:avx2",
        "backward_data": "brg_conv_bwd:avx2+brg_conv_fwd:avx2",
        "backward_weights": "x64:gemm:jit"}}
    libs = dict(cyconv="x86-64-v3", torch="AVX2", openblas="Haswell", onnxruntime="1.32.0")
    rows = _bench_levels.check_level("x86-64-v3", libs, onednn, ("torch", "onnxruntime"))
    assert [(r["library"].split()[0], r["ok"]) for r in rows] == [
        ("cyconv", True), ("PyTorch", True), ("PyTorch", True), ("NumPy", True),
        ("ONNX", None), ("NumPy", None)]
    assert rows[2]["setting"] == "ONEDNN_MAX_CPU_ISA=AVX2"
    # the same reports judged against another level: nothing is in effect
    rows = _bench_levels.check_level("x86-64-v4", libs, onednn, ("torch",))
    assert [r["ok"] for r in rows] == [False, False, False, False, None]
    # an AVX-512 kernel under an AVX2 limit is caught even if the isa line agrees
    leaked = dict(onednn, convolution={"forward_training": "brg_conv_fwd:avx512_core"})
    assert _bench_levels.check_level("x86-64-v3", libs, leaked)[2]["ok"] is False


def test_library_report_names_cyconv_level_and_openblas_core():
    rep = _bench_levels.library_report()
    assert rep["cyconv"] == cyconv.cpu_level()
    assert rep["torch"] is None and rep["onnxruntime"] is None
    if rep["openblas"] is not None:
        assert rep["openblas"] and rep["openblas"] != "None"


def test_level_all_runs_each_level_with_its_settings_in_effect(tmp_path, capsys):
    out = tmp_path / "levels.json"
    assert bench.main(["--level", "all", "--quick", "--shapes", "S1", "--ops", "fwd",
                       "--dtype", "float64", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    levels = list(cyconv._dispatch.cpu_levels())
    assert [line for line in text.splitlines() if line.startswith("## CPU level")] == [
        f"## CPU level {lv}" for lv in levels]
    report = json.loads(out.read_text())
    assert [r["level"] for r in report["results"]] == levels
    assert [g["level"] for g in report["gemm"]] == levels
    for entry in report["levels"]:
        level, checks = entry["level"], {c["library"]: c for c in entry["checks"]}
        assert entry["level_settings"] == _bench_levels.LEVEL_SETTINGS[level]
        assert entry["libraries"]["cyconv"] == level and checks["cyconv"]["ok"] is True
        # every setting that exists either took effect or its library is absent
        assert all(c["ok"] is not False for c in entry["checks"]), entry["checks"]
        if HAS_TORCH:
            assert entry["libraries"]["torch"] == _bench_levels.EXPECTED[level]["torch"]
            assert entry["onednn"]["isa"] == _bench_levels.EXPECTED[level]["onednn"]
        if entry["libraries"]["openblas"] is not None:
            assert entry["libraries"]["openblas"] == _bench_levels.EXPECTED[level]["openblas"]


# --- the pools' roofline -------------------------------------------------------

def test_pool_bytes_counts_each_array_once():
    x, p = (8, 112, 112, 64), (8, 55, 55, 64)  # P2
    nx, np_ = 8 * 112 * 112 * 64, 8 * 55 * 55 * 64
    assert bench.conv_output_hw("P2") == (55, 55)
    assert _bench_roofline.pool_bytes(x, p, "max_fwd", 4) == (nx + np_) * 4 == 31_885_312
    assert _bench_roofline.pool_bytes(x, p, "avg_fwd", 8) == (nx + np_) * 8
    # x, p, indices (int32) | dp, indices, dx
    assert _bench_roofline.pool_bytes(x, p, "max_fb", 4) == 76_161_024
    assert _bench_roofline.pool_bytes(x, p, "max_fb", 8) == 2 * nx * 8 + 2 * np_ * 8 + 2 * np_ * 4
    assert _bench_roofline.pool_bytes(x, p, "avg_fb", 4) == 2 * (nx + np_) * 4 == 63_770_624
    assert _bench_roofline.index_itemsize() == 4  # cyconv's argmax is int32


def test_pool_bytes_docstring_example():
    import doctest
    assert doctest.testmod(_bench_roofline).failed == 0


@pytest.mark.parametrize("threads", [1, 3])
def test_copy_bandwidth_copies_every_chunk_on_its_threads(threads):
    with _bench_roofline.CopyBandwidth(8001 * 8, threads) as cb:
        assert len(cb.chunks) == threads
        assert sum(s.size for _, s in cb.chunks) == cb.src.size == 8001
        cb.copy()
        np.testing.assert_array_equal(cb.dst, cb.src)
        assert cb.bytes_moved == 2 * 8001 * 8
    rate = _bench_roofline.copy_rate(8000 * 8, threads, lambda fns: {
        k: [0.5e-3, 1e-3, 2e-3] for k in fns})
    assert rate == dict(mb=0.06, threads=threads, ms=1.0, gbps=2 * 8000 * 8 / 1e-3 / 1e9)


def test_pool_rows_report_bytes_per_second_against_the_copy(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--shapes", "P1", "--ops", "max_fb,avg_fwd", "--dtype",
                       "float32", "--threads", "1", "--no-torch", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    head, rows = _results_table(text)
    assert ["GB/s", "% copy"] == head[head.index("GB/s"):head.index("% copy") + 1]
    report = json.loads(out.read_text())
    (copy,) = report["copy"]
    assert (copy["shape"], copy["dtype"], copy["threads"]) == ("P1", "float32", 1)
    assert copy["mb"] == round(8 * 56 * 56 * 64 * 4 / 1e6, 2) and copy["gbps"] > 0
    assert "| copy (np.copyto, read + write) | MB | threads | GB/s |" in text
    for r, row in zip(report["results"], rows):
        assert r["bytes_moved"] == _bench_roofline.pool_bytes(
            (8, 56, 56, 64), (8, 28, 28, 64), r["op"], 4)
        assert r["gbps"] == pytest.approx(r["bytes_moved"] / (r["cyconv_ms"] / 1e3) / 1e9)
        assert r["copy_fraction"] == pytest.approx(r["gbps"] / copy["gbps"])
        assert row["GB/s"] == f"{r['gbps']:.1f}"
        assert row["% copy"] == f"{r['copy_fraction'] * 100:.0f}"


# --- ONNX Runtime (--peers) ----------------------------------------------------

def test_peers_default_to_torch_and_reject_unknown_or_missing(monkeypatch):
    peers, torch, ort = _bench_peers.parse_peers(None)
    assert peers == (("torch",) if HAS_TORCH else ()) and ort is None
    assert _bench_peers.parse_peers(None, no_torch=True)[:2] == ((), None)
    assert _bench_peers.parse_peers("none")[0] == ()
    with pytest.raises(ValueError, match="unknown peer 'tf'"):
        _bench_peers.parse_peers("torch,tf")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match="onnxruntime is not installed"):
        _bench_peers.parse_peers("onnxruntime")
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--shapes", "S1", "--peers", "onnxruntime"])


def test_onnx_model_is_one_conv_node_with_oihw_initializers():
    modules = _bench_peers.import_onnxruntime()
    if modules is None:
        pytest.skip("onnxruntime / onnx not installed")
    _, onnx = modules
    data = bench.make_inputs("S1", "float32")
    model = _bench_peers.onnx_conv_model(onnx, data["w"], data["b"], (10, 4, 5, 7), 2, 1)
    (node,) = model.graph.node
    attrs = {a.name: list(a.ints) or a.i for a in node.attribute}
    assert (node.op_type, list(node.input)) == ("Conv", ["x", "W", "B"])
    assert attrs == dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         dilations=[1, 1], group=1)
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(init["W"], data["w"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(init["B"], data["b"])


@pytest.mark.parametrize("name", ["S1", "S3", "S7"])
@pytest.mark.parametrize("threads", [1, 2])
def test_onnxruntime_conv_equals_cyconv(name, threads):
    modules = _bench_peers.import_onnxruntime()
    if modules is None:
        pytest.skip("onnxruntime / onnx not installed")
    case, data = bench.SHAPES[name], bench.make_inputs(name, "float32")
    x_before = data["x"].copy()
    fn, to_nhwc = _bench_peers.ort_op(modules, case, "fwd", data, threads)
    z = cyconv.conv2d(data["x"], data["w"], data["b"], stride=case["stride"],
                      padding=case["padding"])
    np.testing.assert_allclose(to_nhwc(fn()), z, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(data["x"], x_before)
    # no float64 Conv, no backward, no pools
    assert _bench_peers.ort_op(modules, case, "dx", data, 1) is None
    assert _bench_peers.ort_op(modules, case, "fwd", bench.make_inputs(name, "float64"), 1) is None
    assert _bench_peers.ort_op(modules, bench.SHAPES["P1"], "max_fwd",
                               bench.make_inputs("P1", "float32"), 1) is None


def test_quick_run_with_onnxruntime_has_ort_columns_for_float32_fwd(tmp_path, capsys):
    if not HAS_ORT:
        pytest.skip("onnxruntime / onnx not installed")
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--shapes", "S1", "--ops", "fwd,dx", "--dtype",
                       "float32,float64", "--threads", "1", "--peers", "onnxruntime",
                       "--json", str(out)]) == 0
    head, rows = _results_table(capsys.readouterr().out)
    assert "torch ms" not in head and ["ORT ms", "vs ORT"] == head[5:7]
    report = json.loads(out.read_text())
    assert report["peers"] == ["onnxruntime"]
    for r, row in zip(report["results"], rows):
        assert r["torch_ms"] is None
        if (r["op"], r["dtype"]) == ("fwd", "float32"):
            assert r["onnxruntime_ms"] > 0 and r["max_rel_diff"]["onnxruntime"] < 1e-5
            assert r["speedup_vs_onnxruntime"] == pytest.approx(
                r["onnxruntime_ms"] / r["cyconv_ms"])
            assert row["ORT ms"] == bench._ms(r["onnxruntime_ms"])
        else:
            assert r["onnxruntime_ms"] is None and "onnxruntime" not in r["max_rel_diff"]
            assert (row["ORT ms"], row["vs ORT"]) == ("—", "—")


def test_plot_has_a_panel_per_level(tmp_path):
    pytest.importorskip("matplotlib")
    results = [dict(shape="S1", op="fwd", dtype="float32", threads=1, level=lv,
                    speedup_vs_torch=v) for lv, v in [("baseline", 3.0), ("x86-64-v3", 1.2)]]
    path = tmp_path / "levels.png"
    bench.plot({"results": results}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# The feature rows (issue 16): dilated, depthwise, transposed, NCHW
# --------------------------------------------------------------------------

def test_feature_rows_are_the_issue_16_shapes():
    s = bench.SHAPES
    assert bench.SHAPE_GROUPS["features"] == ("D4", "G1", "G2", "G3", "T1", "N4", "N6")
    assert bench.SHAPE_GROUPS["standard"] == ("S1", "S2", "S3", "S4", "S5", "S6", "S7",
                                              "P1", "P2", "P3")
    assert (s["D4"]["x"], s["D4"]["w"], s["D4"]["padding"], s["D4"]["dilation"],
            s["D4"]["base"]) == (s["S4"]["x"], s["S4"]["w"], 2, 2, "S4")
    assert bench.conv_output_hw("D4") == bench.conv_output_hw("S4") == (56, 56)
    assert bench.conv_flops("D4") == bench.conv_flops("S4")
    for name, stride, x, c in [("G1", 1, (8, 112, 112, 32), 32), ("G2", 2, (8, 112, 112, 32), 32),
                               ("G3", 1, (8, 14, 14, 512), 512)]:
        assert (s[name]["x"], s[name]["w"], s[name]["stride"], s[name]["groups"]) == (
            x, (3, 3, 1, c), stride, c)
    assert bench.conv_output_hw("G2") == (56, 56)
    assert bench.conv_flops("G1") == 2 * 8 * 112 * 112 * 32 * 9
    # T1: 8x28x28x128 -> 8x56x56x64, 4x4 stride 2 padding 1
    assert bench.conv_output_hw("T1") == (56, 56)
    data = bench.make_inputs("T1", "float32")
    assert data["dz"].shape == (8, 56, 56, 64)
    assert bench.conv_flops("T1") == 2 * 8 * 28 * 28 * 128 * 4 * 4 * 64
    for n, base in (("N4", "S4"), ("N6", "S6")):
        assert (s[n]["x"], s[n]["w"], s[n]["layout"], s[n]["base"]) == (
            s[base]["x"], s[base]["w"], "NCHW", base)
    data = bench.make_inputs("N6", "float64")
    assert data["x"].shape == (8, 256, 14, 14) and data["w"].shape == (256, 256, 3, 3)
    assert data["x"].flags.c_contiguous


def _tiny_features(monkeypatch):
    # Small stand-ins for the feature rows (and their bases): every op in a quick run.
    tiny = {
        "S4": bench._conv((2, 9, 9, 8), (3, 3, 8, 8), 1, 1),
        "D4": bench._feature("dilated", (2, 9, 9, 8), (3, 3, 8, 8), 1, 2, dilation=2, base="S4"),
        "G1": bench._feature("depthwise", (2, 12, 12, 16), (3, 3, 1, 16), 2, 1, groups=16),
        "T1": bench._feature("transposed", (2, 5, 5, 8), (4, 4, 4, 8), 2, 1),
        "N4": bench._feature("nchw", (2, 9, 9, 8), (3, 3, 8, 8), 1, 1, layout="NCHW", base="S4"),
    }
    for k, v in tiny.items():
        monkeypatch.setitem(bench.SHAPES, k, v)


def test_quick_run_of_the_feature_rows_reports_ratios_bandwidth_and_json(monkeypatch, tmp_path,
                                                                          capsys):
    _tiny_features(monkeypatch)
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--shapes", "D4,G1,T1,N4", "--dtype", "float64",
                       "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    head, rows = _results_table(text)
    expected = [("D4", "fwd"), ("D4", "dx"), ("D4", "dw"), ("G1", "fwd"), ("G1", "fb"),
                ("T1", "fwd"), ("T1", "dx"), ("T1", "dw"), ("N4", "fwd"), ("N4", "dx"),
                ("N4", "dw")]
    assert [(r["shape"], r["op"]) for r in rows] == expected
    assert {"base", "base ms", "vs base", "GB/s", "% copy"} <= set(head)
    assert ("torch ms" in head) == HAS_TORCH
    report = json.loads(out.read_text())
    results = report["results"]
    assert [(r["shape"], r["op"]) for r in results] == expected
    assert [(g["dtype"], g["threads"]) for g in report["gemm"]] == [("float64", 1)]
    for r, row in zip(results, rows):
        assert r["agree"], (r["shape"], r["op"], r["max_rel_diff"])
        assert r["cyconv_ms"] > 0
        if r["shape"] in ("D4", "N4"):
            assert r["base"] == "S4" and r["base_ms"] > 0
            assert r["ratio_vs_base"] == pytest.approx(r["cyconv_ms"] / r["base_ms"])
            assert row["vs base"] == bench._ratio_text(r["ratio_vs_base"])
        else:
            assert "base_ms" not in r and row["vs base"] == "—"
        if (r["shape"], r["op"]) == ("G1", "fwd"):
            moved = 8 * (2 * 12 * 12 * 16 + 9 * 16 + 16 + 2 * 6 * 6 * 16)
            assert r["bytes_moved"] == moved
            assert r["gbps"] == pytest.approx(moved / r["cyconv_ms"] / 1e6)
            assert r["copy_fraction"] == pytest.approx(r["gbps"] / r["copy_gbps"])
        else:
            assert "gbps" not in r
        assert r["gflops"] > 0
        if r["shape"] == "G1":   # memory-bound: no % GEMM
            assert r["gemm_fraction"] is None and row["% GEMM"] == "—"
        else:
            assert 0 < r["gemm_fraction"] == pytest.approx(
                r["gflops"] / report["gemm"][0]["gflops"])
        if HAS_TORCH:
            assert r["torch_ms"] > 0 and "torch" in r["max_rel_diff"]
    assert "- D4 (conv2d): x(2, 9, 9, 8)" in text and "vs base = cyconv ms / base ms" in text
    assert "fb (depthwise rows)" in text and "bytes a pool op" not in text


def test_feature_rows_run_without_torch(monkeypatch, capsys):
    _tiny_features(monkeypatch)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert bench.main(["--quick", "--shapes", "features", "--ops", "fwd,fb", "--dtype",
                       "float32", "--threads", "1"]) == 0
    head, rows = _results_table(capsys.readouterr().out)
    assert "torch ms" not in head
    assert [(r["shape"], r["op"]) for r in rows][:3] == [("D4", "fwd"), ("G1", "fwd"),
                                                         ("G1", "fb")]


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
@pytest.mark.parametrize("name", ["D4", "G1", "T1", "N4"])
def test_feature_rows_torch_peers_compute_what_cyconv_computes(monkeypatch, name):
    # every op of each feature kind agrees with its torch peer (the bench's own check)
    _tiny_features(monkeypatch)
    torch = bench.import_torch()
    for op in bench.OPS[bench.SHAPES[name]["kind"]]:
        data = bench.make_inputs(name, "float64")
        mine = bench.cyconv_op(name, op, data, 1)()
        fn, convert = bench.torch_op(torch, name, op, data)
        assert bench._rel_diff(mine, convert(fn())) < 1e-12, (name, op)


def test_shape_groups_select_the_rows_and_level_runs_default_to_standard():
    args, cases, *_ = bench._parse(["--shapes", "features", "--ops", "fwd"])
    assert [n for n, _ in cases] == list(bench.SHAPE_GROUPS["features"])
    args, cases, *_ = bench._parse(["--shapes", "depthwise,transposed"])
    assert cases == [("G1", "fwd"), ("G1", "fb"), ("G2", "fwd"), ("G2", "fb"), ("G3", "fwd"),
                     ("G3", "fb"), ("T1", "fwd"), ("T1", "dx"), ("T1", "dw")]
    _, cases, *_ = bench._parse([])
    assert {n for n, _ in cases} == set(bench.SHAPES)       # the default run has both groups
    _, cases, *_ = bench._parse(["--ops", "fb"])
    assert cases == [("G1", "fb"), ("G2", "fb"), ("G3", "fb")]
    args = bench._parser().parse_args(["--level", "all", "--dtype", "float32"])
    assert _bench_levels.child_argv(args)[-2:] == ["--shapes", "standard"]
    args, cases, *_ = bench._parse(["--level", "all"])
    assert {n for n, _ in cases} == set(bench.SHAPE_GROUPS["standard"])
