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
    assert len(bench.select_cases()) == 7 * 3 + 3 * 4


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
