"""python -m cyconv.bench --train (cyconv.bench_train): runs and tells the truth."""
import importlib
import json
import pathlib
import sys

import numpy as np
import pytest
from conftest import needs_source_tree

from cyconv import bench, bench_train

ROOT = pathlib.Path(__file__).resolve().parent.parent
HAS_TORCH = bench.import_torch() is not None


def _table(text):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    cells = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in lines[start:] if line.startswith("|")]
    return cells[0], [dict(zip(cells[0], row)) for row in cells[2:]]


def test_models_are_the_issue_models_with_their_parameter_counts():
    lenet = bench_train.cyconv_model("lenet5", "float64")
    conv4 = bench_train.cyconv_model("conv4", "float32")
    count = lambda m: sum(p.size for p in m.parameters().values())  # noqa: E731
    # LeNet-5: 156 + 2416 + 48120 + 10164 + 850; conv4: 896 + 9248 + 18496 + 36928 + 40970
    assert count(lenet) == 61706 and count(conv4) == 106538
    for name, model, dtype in (("lenet5", lenet, np.float64), ("conv4", conv4, np.float32)):
        x, y = bench_train.make_batch(name, 4, dtype)
        assert model.forward(x).shape == (4, 10) and y.shape == (4,)
        assert all(p.dtype == dtype for p in model.parameters().values())
    assert bench_train.select_cases() == [("lenet5", 8), ("lenet5", 64), ("conv4", 32),
                                          ("conv4", 128)]
    assert bench_train.select_cases(quick=True) == [("lenet5", 8), ("conv4", 32)]
    assert bench_train.select_cases(["conv4"], [5]) == [("conv4", 5)]


def test_cyconv_step_trains_the_model():
    model = bench_train.cyconv_model("lenet5")
    x, y = bench_train.make_batch("lenet5", 16)
    step = bench_train.cyconv_step(model, x, y)
    losses = [step() for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", list(bench_train.MODELS))
def test_torch_twin_computes_the_same_step(name, dtype):
    torch = pytest.importorskip("torch")
    model = bench_train.cyconv_model(name, dtype, num_threads=1)
    x, y = bench_train.make_batch(name, 3, dtype)
    net = bench_train.torch_twin(torch, model, bench_train.MODELS[name]["input"])
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for _ in range(2):  # the second step uses the momentum buffers too
        loss_t = float(bench_train.torch_step(torch, net, x, y)())
        loss_c = bench_train.cyconv_step(model, x, y)()
        assert loss_c == pytest.approx(loss_t, rel=tol["rtol"])
    np.testing.assert_allclose(model.parameters()["0.w"], bench_train._first_conv_weight(net),
                               **tol)


def test_quick_train_run_prints_a_row_per_case_and_json_medians(tmp_path, capsys):
    out = tmp_path / "train.json"
    assert bench.main(["--train", "--quick", "--models", "lenet5", "--dtype", "float32",
                       "--threads", "1,2", "--json", str(out)]) == 0
    head, rows = _table(capsys.readouterr().out)
    assert [(r["model"], r["batch"], r["dtype"], r["threads"]) for r in rows] == [
        ("lenet5", "8", "float32", "1"), ("lenet5", "8", "float32", "2")]
    assert ("torch ms" in head) == HAS_TORCH
    results = json.loads(out.read_text())["results"]
    for r, row in zip(results, rows):
        assert r["rounds"] >= 3 and len(r["cyconv_samples_ms"]) == r["rounds"]
        assert r["cyconv_ms"] == pytest.approx(np.median(r["cyconv_samples_ms"]))
        assert row["cyconv ms"] == bench._ms(r["cyconv_ms"])
        assert r["agree"], r["max_rel_diff"]
        if HAS_TORCH:
            assert r["speedup_vs_torch"] == pytest.approx(r["torch_ms"] / r["cyconv_ms"])
    assert results[0]["vs_1_thread"] == 1.0
    assert results[1]["vs_1_thread"] == pytest.approx(results[0]["cyconv_ms"]
                                                      / results[1]["cyconv_ms"])


def test_train_run_without_torch_has_cyconv_only(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" raises ImportError
    assert bench.main(["--train", "--quick", "--models", "lenet5", "--batches", "2",
                       "--dtype", "float64", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    head, rows = _table(text)
    assert "torch ms" not in head and len(rows) == 1 and "torch not used" in text
    assert "torch imported in this process: no" in text


@pytest.mark.parametrize("argv", [["--models", "vgg"], ["--batches", "0"], ["--dtype", "int8"],
                                  ["--threads", "x"]])
def test_bad_train_options_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--train"] + argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_train_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    results = [dict(model=m, batch=b, dtype=d, threads=t, speedup_vs_torch=1.5)
               for m, b in bench_train.select_cases() for d in ("float32", "float64")
               for t in (1, 2)]
    path = tmp_path / "train.png"
    bench_train.plot({"results": results}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_source_tree("benchmarks/benchmark_train.py")
def test_asv_train_suite_runs_a_step_of_every_model():
    sys.path.insert(0, str(ROOT))
    try:
        suite = importlib.import_module("benchmarks.benchmark_train")
    finally:
        sys.path.remove(str(ROOT))
    cls = suite.TrainStep
    assert cls.params[0] == ["lenet5-b8", "lenet5-b64", "conv4-b32", "conv4-b128"]
    assert cls.param_names == ("model", "dtype", "threads")
    for case in ("lenet5-b8", "conv4-b32"):
        s = cls()
        s.setup(case, "float32", 1)
        assert s.time_train_step(case, "float32", 1) is None
