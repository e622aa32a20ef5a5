"""cyconv.demo: a quick run learns, seeded runs repeat, a missing extra gives a hint."""
import re
import sys

import numpy as np
import pytest

from cyconv import demo


def _needs_extra():
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")


def _epoch_losses(text):
    return [float(v) for v in re.findall(r"^epoch\s+\d+/\d+\s+loss (\S+)", text, re.MULTILINE)]


def test_quick_demo_run_lowers_the_loss_and_reports_accuracy_and_speed_up(monkeypatch, capsys):
    _needs_extra()
    monkeypatch.setattr(demo, "_import_torch", lambda: None)  # as without torch: the reference
    status = demo.main(["--limit", "200", "--epochs", "2", "--threads", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    losses = _epoch_losses(out)
    assert len(losses) == 2 and losses[1] < losses[0]
    assert re.search(r"^test accuracy: \d+\.\d% \(\d+/40\)", out, re.MULTILINE)
    assert re.search(r"^one training step \(batch 8\): cyconv .* reference .* -> \d+x faster$",
                     out, re.MULTILINE)


def test_with_torch_the_demo_compares_its_whole_step_with_pytorch(capsys):
    _needs_extra()
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    history = demo.run(limit=100, epochs=1, batch_size=16, threads=1, progress=False)
    out = capsys.readouterr().out
    assert re.search(r"^one training step \(batch 16, Adam, 1 thread\): cyconv \d+\.\d ms, "
                     r"PyTorch \S+ \d+\.\d ms -> \d+\.\d\dx$", out, re.MULTILINE)
    assert set(history["step_seconds"]) == {"cyconv", "torch"}
    assert all(v > 0 for v in history["step_seconds"].values())
    assert torch.get_num_threads() == threads  # restored


def test_step_timing_copy_leaves_the_trained_model_unchanged():
    pytest.importorskip("torch")
    import torch
    model = demo.lenet5(seed=0, num_threads=1)
    before = {k: v.copy() for k, v in model.parameters().items()}
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    fast, peer = demo.time_step_vs_torch(model, x, np.arange(4), torch, 1, rounds=3)
    assert fast > 0 and peer > 0
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, before[k])


def test_seeded_runs_repeat_exactly_and_other_seeds_differ():
    _needs_extra()
    kw = dict(limit=100, epochs=2, threads=1, compare=False, progress=False, out=lambda s: None)
    first, again, other = demo.run(seed=3, **kw), demo.run(seed=3, **kw), demo.run(seed=4, **kw)
    assert first["loss"] == again["loss"]
    assert first["test_accuracy"] == again["test_accuracy"]
    assert first["loss"] != other["loss"]
    assert len(first["seconds"]) == 2 and first["total_seconds"] > 0


def test_saved_weights_load_into_a_fresh_lenet5_and_plot_is_written(tmp_path):
    _needs_extra()
    pytest.importorskip("matplotlib")
    weights, curve = tmp_path / "weights.npz", tmp_path / "curve.png"
    history = demo.run(limit=60, epochs=1, threads=1, pool="avg", save=weights, plot=curve,
                       compare=False, progress=False, out=lambda s: None)
    assert curve.stat().st_size > 0
    model = demo.lenet5("avg").load(weights)
    for k, v in history["model"].parameters().items():
        np.testing.assert_array_equal(model.parameters()[k], v)


@pytest.mark.parametrize("missing", ["sklearn", "tqdm"])
def test_missing_extra_prints_the_install_command_and_exits_2(monkeypatch, capsys, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` fail
    assert demo.main(["--limit", "60"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "the demo needs scikit-learn and tqdm: pip install 'cyconv[demo]'"


def test_plot_without_matplotlib_prints_the_install_command_and_exits_2(monkeypatch, capsys):
    _needs_extra()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert demo.main(["--plot", "curve.png"]) == 2
    assert "pip install 'cyconv[demo]'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--pool", "min"], ["--batch-size", "0"], ["--threads", "-1"]])
def test_bad_options_exit_2_with_a_usage_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_lenet5_maps_32x32_digits_to_10_scores_with_the_notes_layer_sizes():
    model = demo.lenet5("max", seed=0, num_threads=1)
    shapes = {k: v.shape for k, v in model.parameters().items()}
    assert shapes == {"0.w": (5, 5, 1, 6), "0.b": (6,), "3.w": (5, 5, 6, 16), "3.b": (16,),
                      "7.w": (400, 120), "7.b": (120,), "9.w": (120, 84), "9.b": (84,),
                      "11.w": (84, 10), "11.b": (10,)}
    out = model.eval().forward(np.zeros((2, 32, 32, 1), dtype=np.float32))
    assert out.shape == (2, 10) and out.dtype == np.float32


def test_upscale_keeps_constant_images_and_random_shift_keeps_shape_and_content():
    images = np.full((3, 8, 8), 0.25)
    big = demo.upscale(images)
    assert big.shape == (3, 32, 32)
    np.testing.assert_allclose(big, 0.25)
    x = np.zeros((4, 32, 32, 1), dtype=np.float32)
    x[:, 10:20, 10:20] = 1  # room to move: nothing is shifted out of the frame
    shifted = demo.random_shift(x, 2, np.random.default_rng(0))
    assert shifted.shape == x.shape and shifted.dtype == x.dtype
    np.testing.assert_array_equal(shifted.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)))
    assert demo.random_shift(x, 0, None) is x
