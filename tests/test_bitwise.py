"""Kernel outputs stay bitwise identical to those of commit 974173a, at every CPU level.

(One deliberate change since: at x86-64-v4, float32 dx of layers with <= 4
input channels runs x86-64-v3's dot tile, 8 lanes instead of 16, so those
entries come from the commit after b8e738c; every other entry is 974173a's.)

What this guards
----------------
The restructuring of the compiled kernels (cyconv/_conv.pyx, _conv_simd.h,
_pool_kernels.pxi (now _pool.pyx), _pool_simd.h, setup.py and the Python layers conv.py,
pool.py, _args.py) promises no change in behaviour: every output bitwise
identical to commit 974173a at each CPU level the machine runs. The other
tests compare against a reference within a rounding tolerance and would let
a changed summation order or a lost/added FMA contraction through; this one
does not. tests/data/bitwise_checksums.json holds, per CPU level, the sha256
(with dtype and shape) of every output of every case of tests/bitwise_cases.py
as computed by cyconv 0.1.0 built from 974173a; each (level, case) here
recomputes them and compares. A mismatch names the case's parameters, the
outputs that differ and, since no arrays are stored (so no max abs
difference), the stored and new sum of the finite values and NaN count, and
whether the difference is only in NaN bit patterns.

Levels this CPU cannot run are skipped (the ``level`` fixture). The
comparisons are skipped, with a reason naming both sides, on another
architecture or with another compiler than the checksums were made with
(see the file's header): the rounding of vectorised code depends on the
compiler (e.g. its FMA contraction), so the stored bytes only bind builds
from the same toolchain. They are also skipped without the data file (an
sdist ships tests/*.py only). The inputs are checked too (their sha256 is
stored): should a NumPy release change the random streams, the test fails
saying so rather than reporting a kernel change.

Regenerating
------------
Only deliberately, when a change is *meant* to alter rounding (a new
summation order, a new tile), and in the same commit as that change, whose
message says so and names the commit the new checksums come from. From a
build of that commit installed in an environment, in a directory where
``import cyconv`` does not pick up a source tree::

    cd /tmp && python /path/to/repo/tests/make_bitwise_checksums.py \\
        /path/to/repo/tests/data/bitwise_checksums.json --commit <hash>

Regenerating to make this test pass after a change that was meant to keep
the outputs is exactly what it exists to prevent. Adding cases requires
regenerating from the reference commit's build, not from the changed code.

Which cases cover which path (conditions of 974173a; the test
``test_case_set_reaches_every_kernel_path`` recomputes this per level and
dtype from the case parameters with ``bitwise_cases.paths``)
------------------------------------------------------------------------------
conv2d forward (``conv2d_forward``):
  zero-padded copy of x, taken when ``(f_w - 1) * 8 > n_w and (p_l > 0 or
  R > 0) and p_l <= f_w and R <= f_w`` and w is finite: conv-narrow-* (3x3,
  5x5, 7x7 on widths 5..12), conv-narrow-right-pad (R > 0 with p_l = 0),
  conv-dot-narrow-*, conv-wider-than-image (5x5 on width 3, 7x7 on width
  6, padded), conv-same-even-in1x10x10x16 and -in2x9x7x5 ("same" with even
  kernels), conv-small-cin, conv-api, conv-unequal, several conv-blocks,
  conv-x-nan-in2x8x12x5 (NaN through the copy).
  in place (interior tiles + edge columns): conv-blocks-in1x8x17x64 and
  others, conv-dot-wide-*, conv-pointwise, conv-dw-groups, conv-gaps,
  conv-narrow-valid (no padding: copy not taken), conv-taller-than-image
  (f_h > n_h), conv-same-even-in1x7x9x8.
  copy rejected, every column an edge column: conv-pad-beyond-kernel-in1x4x2x3
  (p_l > f_w: some windows wholly in the padding give the bias),
  conv-wider-than-image-in1x5x3x4-...-w_inf (inf in w); rejected for
  R > f_w: conv-pad-beyond-kernel-in1x5x6x3.
  register tile at each level, one and two vectors per pixel, and at
  x86-64-v4 the AVX2 tile for <= 32 bytes of channels: c_out in
  {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 24, 31, 33, 64}.
conv2d_backward dx (``conv2d_backward_dx``):
  float32 dot-product form, ``c_in <= 4 and c_out % lanes(dot_level) == 0``,
  at dot_level x86-64-v4 (c_out 16, 32, 64: conv-dot-in2x16x16x3,
  conv-dot-wide, conv-dot-narrow-...-co64, conv-narrow-right-pad,
  conv-grads), x86-64-v3 (c_out 8, 24: conv-dot-narrow-in1x12x12x1,
  conv-dot-narrow-in2x9x10x4, conv-gaps-in1x8x8x4,
  conv-wider-than-image-in1x5x3x4) and baseline (c_out 4, 12:
  conv-dot-in1x8x9x4, conv-dot-in3x7x13x3, conv-unequal-in4x11x9x2);
  c_in <= 4 with c_out not a multiple of 4 takes the register tile
  (conv-small-cin); float64 always does.
  zero-padded copy of dz, ``(f_w - 1) * 8 > n_w`` and w finite (padding or
  not): the forward's narrow cases, conv-narrow-valid and
  conv-pad-beyond-kernel-in1x4x2x3; skipped for inf in w:
  conv-w-inf-in1x6x9x3, conv-wider-than-image-in1x5x3x4-...-w_inf.
conv2d_backward dw, db (``conv2d_backward_dw``):
  dz packed into zero-padded blocks (c_out % NB != 0, e.g. c_out 5, 9, 17,
  24 at v3/v4, 31, 33) and read in place (c_out a multiple of NB); several
  row groups carrying sums in dw (> 1024 output pixels: conv-dw-groups);
  no interior column (conv-wider-than-image-*, conv-pad-beyond-kernel-in1x4x2x3);
  strides 1, 2, 3, (1, 2), (2, 1), (3, 1), (2, 3); gaps between windows
  (conv-gaps: 1x1 and 2x2 kernels at stride 3).
  grads subsets ("dx",), ("dw",), ("db",) (db from dz.sum), ("dw", "db"),
  ("dx", "db"): conv-grads-*.
Threads: conv cases of >= 131072 multiply-adds (the kernels' threshold) and
  pooling inputs of >= 8192 elements run at num_threads 1 and 2, stored
  separately ("@t1", "@t2").
Pooling (``_pool``, ``_pool_v3``, ``_pool_v4``; the module is that of the
  level, or a lower one when the channels fill less than its vector):
  channels 1, 3, 4, 8, 15, 16, 17, 32, 33, 48, 64: full blocks (16 channels,
  32 on AVX-512), tails with whole vectors and scalar remainders.
  max forward (plain and with indices), backward from x (disjoint: one
  pass; overlapping: argmax + gather), backward from indices (int32 and
  int64), the course's all-ties rule through cyconv.compat.pool_backward
  (disjoint and gather forms); avg forward and backward with
  count_include_pad True and False. Windows: overlapping 3x3 s1 and s2,
  disjoint 2x2 s2 and 3x3 s3 (tiling: dx not zero-filled), gaps (2x2 s3,
  s (3, 4)), padding incl. asymmetric and "same", windows wholly in the
  padding (pad-ge-pool, disjoint-pad-ge-pool). Data: ties (integers in
  [-2, 2]), ties with NaN, NaN, +-inf, float16 input.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import pytest

import bitwise_cases as bc

DATA_FILE = Path(__file__).resolve().parent / "data" / "bitwise_checksums.json"
# Absent from an sdist (MANIFEST.in ships tests/*.py only): skip rather than
# fail collection there.
STORED = json.loads(DATA_FILE.read_text()) if DATA_FILE.exists() else {}
HEADER = STORED.get("header", {})
REFERENCE = HEADER.get("commit", "974173a")


def _this_build() -> tuple[str, str | None]:
    compiler = None
    try:
        from cyconv._config import config_info
        compiler = config_info()["build"]["compiler"]
    except Exception:  # a diagnostics failure must not skip the guard: compare anyway
        pass
    return platform.machine(), compiler


def _skip_reason() -> str | None:
    if not STORED:
        return f"{DATA_FILE} not found (a copy of tests/ without tests/data?)"
    machine, compiler = _this_build()
    if machine != HEADER["machine"]:
        return (f"checksums were made on {HEADER['machine']}, this is {machine}: "
                f"the vector code differs")
    if compiler is not None and HEADER.get("compiler") and compiler != HEADER["compiler"]:
        return (f"checksums were made with {HEADER['compiler']}, this build used {compiler}: "
                f"rounding of vectorised code may differ by compiler")
    return None


_REASON = _skip_reason()
needs_checksums = pytest.mark.skipif(_REASON is not None, reason=str(_REASON))


def _mismatch_report(case: bc.Case, level: str, stored: dict, got: dict) -> str:
    lines = [f"{case.name} at {level} is not bitwise identical to commit {REFERENCE}",
             f"  case: {case.describe()}"]
    for name in sorted(set(stored) | set(got)):
        s, g = stored.get(name), got.get(name)
        if s is None:
            lines.append(f"  {name}: new output, not in the stored checksums")
            continue
        if g is None:
            lines.append(f"  {name}: stored but no longer produced")
            continue
        if (g["sha256"], g["dtype"], g["shape"]) == (s["sha256"], s["dtype"], s["shape"]):
            continue
        if (g["dtype"], g["shape"]) != (s["dtype"], s["shape"]):
            lines.append(f"  {name}: dtype/shape {g['dtype']} {tuple(g['shape'])}, "
                         f"stored {s['dtype']} {tuple(s['shape'])}")
            continue
        detail = (f"sum of finite values {g.get('finite_sum')!r} (stored "
                  f"{s.get('finite_sum')!r}), NaNs {g.get('nan', 0)} (stored {s.get('nan', 0)})")
        if s.get("sha256_nan_canonical") and s["sha256_nan_canonical"] == g.get(
                "sha256_nan_canonical"):
            detail = "differs only in NaN bit patterns (sign/payload); " + detail
        lines.append(f"  {name}: sha256 {g['sha256'][:16]}..., stored {s['sha256'][:16]}...; "
                     + detail)
    return "\n".join(lines)


@needs_checksums
@pytest.mark.parametrize("case", bc.CASES, ids=[c.name for c in bc.CASES])
def test_outputs_bitwise_identical_to_stored_checksums(level, case):
    if level not in STORED:
        pytest.skip(f"no stored checksums for {level} (made on a CPU without it)")
    stored = STORED[level].get(case.name)
    assert stored is not None, (
        f"{case.name} has no stored checksum: the case list changed; the checksums must be "
        f"regenerated from the reference build ({REFERENCE}), see the module docstring")
    assert bc.inputs_digest(case) == STORED["inputs"][case.name], (
        f"{case.name}: the inputs themselves differ from those the checksums were made "
        f"from (NumPy {HEADER['numpy']}; now {np.__version__}): a change of the case or of "
        f"NumPy's random streams, not of the kernels; nothing can be concluded")
    got = {name: bc.digest(a) for name, a in bc.run_case(case).items()}
    same = all(name in got and (got[name]["sha256"], got[name]["dtype"], got[name]["shape"])
               == (s["sha256"], s["dtype"], s["shape"]) for name, s in stored.items())
    assert same and set(got) == set(stored), _mismatch_report(case, level, stored, got)


@needs_checksums
def test_stored_checksums_cover_exactly_the_cases():
    names = {c.name for c in bc.CASES}
    assert set(STORED["inputs"]) == names
    for level in HEADER["levels"]:
        assert set(STORED[level]) == names, level


@needs_checksums
def test_stored_outputs_agree_across_thread_counts():
    # The kernels promise results independent of num_threads; the reference
    # build kept it for every case (a difference would be a bug of 974173a).
    assert not HEADER["problems"], HEADER["problems"]
    for level in HEADER["levels"]:
        for case, outs in STORED[level].items():
            for name, d in outs.items():
                if name.endswith("@t1") and name[:-1] + "2" in outs:
                    assert outs[name[:-1] + "2"]["sha256"] == d["sha256"], (level, case, name)


# The paths each CPU level must see, per dtype (bitwise_cases.paths names them).
_COMMON = {
    "conv:threaded", "conv:db-without-dw", "conv:no-input-channels",
    "fwd:narrow-copy", "fwd:in-place", "fwd:edge-only-columns",
    "dx:narrow-copy", "dx:narrow-skipped-nonfinite",
    "dw:packed-dz", "dw:in-place-dz", "dw:several-row-groups", "dw:no-interior-columns",
    "pool:disjoint", "pool:overlapping", "pool:gaps", "pool:window-wholly-in-padding",
    "pool:full-blocks", "pool:no-full-block", "pool:tail-vectors", "pool:tail-scalar-only",
    "pool:scalar-tail", "pool:all-ties-disjoint", "pool:all-ties-gather",
}


def _required(level: str, dtype: str) -> set:
    lower = bc.LEVEL_NAMES[:bc.LEVEL_NAMES.index(level) + 1]
    req = set(_COMMON)
    for op in ("fwd", "dx", "dw"):
        req |= {f"{op}:tile@{level}:nv1", f"{op}:tile@{level}:nv2"}
        if level == "x86-64-v4":  # <= 32 bytes of channels: the AVX2 tile
            req.add(f"{op}:tile@x86-64-v3:nv1")
    req |= {f"pool:module@{lv}" for lv in lower}
    if dtype == "float32":
        req |= {f"dx:dot@{lv}" for lv in lower}
    return req


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("level_name", bc.LEVEL_NAMES)
def test_case_set_reaches_every_kernel_path(level_name, dtype):
    reached = set()
    for case in bc.CASES:
        if case.dtype == dtype:
            reached |= bc.paths(case, level_name)
    assert not _required(level_name, dtype) - reached


def test_case_set_covers_the_channel_counts():
    conv = [c for c in bc.CASES if c.kind == "conv"]
    want = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 24, 31, 33, 64}
    assert want <= {c.x_shape[3] for c in conv}
    assert want <= {c.c_out for c in conv}
    pool = {c.x_shape[3] for c in bc.CASES if c.kind != "conv"}
    assert {1, 3, 4, 8, 15, 16, 17, 32, 33, 48, 64} <= pool
