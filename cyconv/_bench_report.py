"""Output of ``python -m cyconv.bench``: the Markdown report and the speed-up chart.

:func:`cyconv.bench.markdown` and :func:`cyconv.bench.plot` call these.
"""
from __future__ import annotations

from cyconv.bench import SHAPES, _ms, _num, _ratio_text, conv_flops

__all__ = ["markdown", "plot"]


def markdown(report, title="# cyconv benchmark"):
    """The report as Markdown: machine, settings checked, ceilings, results table, legend."""
    info, results, gemm = report["machine"], report["results"], report["gemm"]
    lines = [title, ""]
    if report.get("checks"):
        lines += ["| library | limited by | reports | in effect |", "|---|---|---|---|"]
        lines += [f"| {c['library']} | {c['setting']} | {c['reports']} | "
                  f"{ {True: 'yes', False: '**NO** (!)', None: '—'}[c['ok']] } |"
                  for c in report["checks"]]
        lines.append("")
    lines.append(f"- {info['date']}; {info['cpu']}, {info['usable_cores']} usable cores "
                 f"({info['cpu_count']} CPUs); {info['platform']}; load average "
                 f"{report.get('load_before')} before, {info['load_average']} after")
    lines.append(f"- Python {info['python']}, NumPy {info['numpy']} (BLAS: {info['blas'] or '?'}), "
                 f"cyconv {info['cyconv']}" + (f" ({info['commit']})" if info["commit"] else "")
                 + f", CPU level {info['cpu_level']}"
                 + (f", torch {info['torch']}" if info["torch"] else ", torch not installed"))
    s = report["settings"]
    lines.append(f"- medians of {'quick ' if report['quick'] else ''}interleaved rounds "
                 f"(~{s['target']} s per case, >= {s['min_rounds']} rounds); "
                 "speed-up = torch ms / cyconv ms (> 1: cyconv faster); others' CPU = cores "
                 "other processes used meanwhile (above ~0.1, distrust multi-thread rows)")
    libs = report.get("libraries")
    if libs:
        lines.append(f"- libraries report: cyconv level {libs['cyconv']}; torch ATen "
                     f"{libs['torch'] or '—'}; NumPy OpenBLAS {libs['openblas'] or '?'}"
                     + (f"; ONNX Runtime {libs['onnxruntime']} (MLAS: cpuid)"
                        if libs.get("onnxruntime") else ""))
    if gemm:
        lines += ["", "| GEMM (NumPy matmul) | threads | GFLOP/s |", "|---|---:|---:|"]
    for g in gemm:
        note = "" if g["limited"] else " (threadpoolctl missing: default BLAS threads)"
        lines.append(f"| {g['dtype']} {g['n']}x{g['n']} | {g['threads']} | "
                     f"{g['gflops']:.1f}{note} |")
    copies = report.get("copy") or []
    if copies:
        lines += ["", "| copy (np.copyto, read + write) | MB | threads | GB/s |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {c['shape']} x {c['dtype']} | {c['mb']:.1f} | {c['threads']} | "
                  f"{c['gbps']:.1f} |" for c in copies]
    has_torch = any(r["torch_ms"] is not None for r in results)
    has_ort = "onnxruntime" in report.get("peers", ())
    has_ref = any(r["reference_ms"] is not None for r in results)
    has_pool = any("gbps" in r for r in results)
    has_base = any(r.get("base_ms") is not None for r in results)
    head = ["shape", "op", "dtype", "threads", "cyconv ms"]
    if has_torch:
        head += ["torch ms", "speed-up"]
    if has_ort:
        head += ["ORT ms", "vs ORT"]
    if has_ref:
        head += ["reference ms", "vs reference"]
    if has_base:
        head += ["base", "base ms", "vs base"]
    head += ["GFLOP/s", "% GEMM"] + (["GB/s", "% copy"] if has_pool else []) + ["others' CPU"]
    lines += ["", "| " + " | ".join(head) + " |",
              "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head))) + "|"]
    rates = {(g["dtype"], g["threads"]): g["gflops"] for g in gemm}
    for r in results:
        row = [r["shape"], r["op"] + ("" if r["agree"] else " (!)"), r["dtype"],
               str(r["threads"]), _ms(r["cyconv_ms"])]
        if has_torch:
            row += [_ms(r["torch_ms"]), _ratio_text(r["speedup_vs_torch"])]
        if has_ort:
            row += [_ms(r.get("onnxruntime_ms")), _ratio_text(r.get("speedup_vs_onnxruntime"))]
        if has_ref:
            row += [_ms(r["reference_ms"]), _ratio_text(r["speedup_vs_reference"])]
        if has_base:
            row += [r.get("base") or "—", _ms(r.get("base_ms")),
                    _ratio_text(r.get("ratio_vs_base"))]
        gf = r.get("gflops")
        rate = rates.get((r["dtype"], r["threads"]))
        frac = r.get("gemm_fraction", gf / rate if gf and rate else None)
        row += [_num(gf, ".1f"), _num(frac * 100 if frac else None, ".0f")]
        if has_pool:
            frac = r.get("copy_fraction")
            row += [_num(r.get("gbps"), ".1f"), _num(frac * 100 if frac else None, ".0f")]
        row.append(_num(r.get("other_cpu"), ".2f"))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Shapes (NHWC x, HWIO w):"]
    for name in dict.fromkeys(r["shape"] for r in results):
        c = SHAPES[name]
        if c["kind"] == "conv":
            lines.append(f"- {name}: x{c['x']} w{c['w']} stride {c['stride']} "
                         f"padding {c['padding']}, {conv_flops(name) / 1e9:.3g} GFLOP per op")
        elif c["kind"] != "pool":
            extra = "".join(f", {k} {c[k]}" for k in ("dilation", "groups") if c[k] != 1)
            what = {"dilated": "conv2d", "depthwise": "conv2d, depthwise",
                    "transposed": "conv_transpose2d, w (f_h, f_w, C_out/groups, C_in)",
                    "nchw": "conv2d(layout='NCHW'), arrays passed as NCHW / OIHW"}[c["kind"]]
            lines.append(f"- {name} ({what}): x{c['x']} w{c['w']} stride {c['stride']} "
                         f"padding {c['padding']}{extra}, {conv_flops(name) / 1e9:.3g} GFLOP "
                         f"per fwd" + (f"; base {c['base']}" if c.get("base") else ""))
        else:
            lines.append(f"- {name}: x{c['x']} pool {c['pool_size']}x{c['pool_size']} "
                         f"stride {c['stride']} padding {c['padding']}")
    lines.append("- ops: fwd = conv2d with bias; dx, dw (= dw and db) = the halves of "
                 "conv2d_backward; *_fb = pool forward then backward")
    if any(SHAPES[r["shape"]]["kind"] == "depthwise" for r in results):
        lines.append("- fb (depthwise rows) = conv2d then conv2d_backward (dx, dw, db); torch: "
                     "autograd of F.conv2d(groups=C); its GFLOP/s count fwd + dx + dw; GB/s of "
                     "a depthwise fwd = bytes it must move (read x, w, b; write z) / cyconv time")
    if has_base:
        lines.append("- vs base = cyconv ms / base ms, the base row (undilated S4, or the NHWC "
                     "call of the same shape) timed interleaved with it: above 1 is what the "
                     "feature costs; the N rows' torch peer gets contiguous NCHW tensors")
    if has_ort:
        lines.append("- ORT = ONNX Runtime CPU provider (one Conv node, NCHW input transposed "
                     "outside the timing); vs ORT = ORT ms / cyconv ms; float32 fwd only")
    if any(SHAPES[r["shape"]]["kind"] == "pool" for r in results):
        lines.append("- GB/s = bytes a pool op must move / cyconv time (fwd: read x, write p; "
                     "max_fb also writes and reads the int32 argmax; *_fb: read dp, write dx); "
                     "% copy = that over np.copyto's rate at x's size and the row's threads")
    bad = [r for r in results if not r["agree"]]
    if bad:
        lines += ["", "(!) results differ beyond tolerance:"]
        lines += [f"- {r['shape']} {r['op']} {r['dtype']} threads {r['threads']}: "
                  f"max relative difference {r['max_rel_diff']}" for r in bad]
    return "\n".join(lines) + "\n"


def plot(report, path):
    """Bar chart of speed-up vs torch per shape and op, one panel per dtype x threads."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    results = [r for r in report["results"] if r["speedup_vs_torch"]]
    levels = list(dict.fromkeys(r.get("level") for r in results))
    key = ((lambda r: (r["dtype"], r["threads"], r.get("level"))) if len(levels) > 1
           else (lambda r: (r["dtype"], r["threads"])))
    panels = list(dict.fromkeys(key(r) for r in results))
    ops = list(dict.fromkeys(r["op"] for r in results))
    colors = {op: plt.get_cmap("tab10")(i % 10) for i, op in enumerate(ops)}
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 3 * len(panels) + 0.6),
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        rows = [r for r in results if key(r) == panel]
        dtype, threads = panel[:2]
        pos, ticks, labels = 0.0, [], []
        for name in dict.fromkeys(r["shape"] for r in rows):
            start = pos
            for r in (r for r in rows if r["shape"] == name):
                ax.bar(pos, r["speedup_vs_torch"], color=colors[r["op"]], label=r["op"])
                pos += 1
            ticks.append((start + pos - 1) / 2)
            labels.append(name)
            pos += 0.8  # gap between shapes
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels)
        ax.set_ylabel("torch ms / cyconv ms")
        ax.set_title(f"{dtype}, {threads} thread{'s' if threads > 1 else ''}"
                     + (f", CPU level {panel[2]}" if len(panel) > 2 else ""))
        handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
        ax.legend(handles.values(), handles.keys(), fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("cyconv speed-up over PyTorch CPU (> 1: cyconv faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
