"""Fixed inputs for the bitwise checksum guard (tests/test_bitwise.py).

``CASES`` is a deterministic list of named cases over the public API
(convolution forward and backward, max and average pooling forward and
backward, the course-compat max-pool backward with its tie rule), chosen to
take every code path of the compiled kernels: the register tile with one and
two vectors per pixel and partial channel blocks, the float32 dot-product
form of dx, the zero-padded-copy path for narrow images, edge-only windows,
the packed and in-place dz of dw, several dw row groups, the pooling modules
of each CPU level with full and partial channel blocks, disjoint and
overlapping windows, argmax keys, NaN, inf and ties. ``make_inputs(case)``
builds a case's inputs from a generator seeded by its name alone (so adding,
removing or reordering cases never changes another case), and
``run_case(case)`` returns every output the case computes, by name.

Each output is named ``"<output>@t<num_threads>"``. Cases large enough for a
second thread to get work (see ``thread_counts``) run at ``num_threads=1``
and ``num_threads=2``; the two must agree (the kernels sum in an order fixed
by the shapes) and are stored separately, so a difference would show in the
stored file rather than being hidden.

This module only uses the public API (plus ``cyconv.compat.pool_backward``,
the only public entry to the tie rule of the max-pool backward), so a
restructuring of the private kernels' signatures does not touch it.

The conditions quoted below are those of commit 974173a (cyconv/_conv.pyx,
cyconv/pool.py); ``paths(case)`` evaluates them for a case so that
``tests/test_bitwise.py`` can check the set still reaches every path.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

THREADS = (1, 2)

# Lanes of one SIMD vector per CPU level (_conv_simd.h: 16, 32, 64 bytes).
_VBYTES = {"baseline": 16, "x86-64-v3": 32, "x86-64-v4": 64}
LEVEL_NAMES = tuple(_VBYTES)
_THREAD_FMAS = 131072          # _conv.pyx _threads_for: below, one thread
_DW_GROUP_PIXELS = 1024        # _conv.pyx DW_GROUP_PIXELS


@dataclass(frozen=True)
class Case:
    """One named set of inputs and the calls made on them.

    kind: "conv", "maxpool" or "avgpool".
    x_shape: (m, n_h, n_w, c) of the input.
    kernel: (f_h, f_w) filter or pool size.
    c_out: output channels (conv only).
    stride, padding: as passed to the public functions.
    dtype: "float32" or "float64" (the dtype of the computation).
    data: how the inputs are drawn (see make_inputs).
    grads: conv2d_backward's grads (None: forward and all three gradients).
    variant: an argument form that takes another Python path ("" for the plain one).
    """

    name: str
    kind: str
    x_shape: Tuple[int, int, int, int]
    kernel: Tuple[int, int]
    stride: Any
    padding: Any
    dtype: str
    c_out: int = 0
    data: str = "normal"
    grads: Optional[Tuple[str, ...]] = None
    variant: str = ""

    def describe(self) -> str:
        parts = [f"kind={self.kind}", f"dtype={self.dtype}", f"x_shape={self.x_shape}",
                 f"kernel={self.kernel}"]
        if self.kind == "conv":
            parts.append(f"c_out={self.c_out}")
        parts += [f"stride={self.stride!r}", f"padding={self.padding!r}", f"data={self.data}"]
        if self.grads is not None:
            parts.append(f"grads={self.grads}")
        if self.variant:
            parts.append(f"variant={self.variant}")
        return ", ".join(parts)


# --------------------------------------------------------------------------
# Geometry (independent of cyconv: the inputs must not depend on the code
# under test)
# --------------------------------------------------------------------------

def _pair(v: Any) -> Tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def pads(case: Case) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """((top, bottom), (left, right)) as cyconv._args.parse_padding gives them."""
    p = case.padding
    n = case.x_shape[1:3]
    f = case.kernel
    s = _pair(case.stride) if case.stride is not None else f
    if p == "valid":
        return ((0, 0), (0, 0))
    if p == "same":
        out = []
        for n_, f_, s_ in zip(n, f, s):
            o = -(-n_ // s_)
            total = max((o - 1) * s_ + f_ - n_, 0)
            out.append((total // 2, total - total // 2))
        return (out[0], out[1])
    if np.isscalar(p):
        return ((p, p), (p, p))
    if np.isscalar(p[0]):
        return ((p[0], p[0]), (p[1], p[1]))
    return (tuple(p[0]), tuple(p[1]))


def output_shape(case: Case) -> Tuple[int, int, int, int]:
    m, n_h, n_w, c = case.x_shape
    f = case.kernel
    s = _pair(case.stride) if case.stride is not None else f
    (pt, pb), (pl, pr) = pads(case)
    o_h = (n_h + pt + pb - f[0]) // s[0] + 1
    o_w = (n_w + pl + pr - f[1]) // s[1] + 1
    return (m, o_h, o_w, case.c_out if case.kind == "conv" else c)


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def _rng(case: Case) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case.name.encode()))


def _sprinkle(rng: np.random.Generator, a: np.ndarray, count: int, value: float) -> None:
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, size=min(count, flat.size), replace=False)] = value


def make_inputs(case: Case) -> Dict[str, np.ndarray]:
    """The case's input arrays, from a generator seeded by the case name.

    data:
      "normal"    standard normal values (cast to the dtype)
      "x_nan"     normal, with a few NaNs in x
      "w_inf"     normal, with +inf and -inf in w (disables the narrow-image copies)
      "ties"      integers in [-2, 2]: many tied maxima
      "ties_nan"  ties plus a few NaNs
      "inf"       normal plus a few +inf and -inf
    """
    rng = _rng(case)
    dt = np.dtype(case.dtype)
    out_shape = output_shape(case)
    if case.data in ("ties", "ties_nan"):
        x = rng.integers(-2, 3, size=case.x_shape).astype(dt)
    else:
        x = rng.standard_normal(case.x_shape).astype(dt)
    if case.data in ("x_nan", "ties_nan"):
        _sprinkle(rng, x, max(2, x.size // 97), np.nan)
    if case.data == "inf":
        _sprinkle(rng, x, max(1, x.size // 89), np.inf)
        _sprinkle(rng, x, max(1, x.size // 83), -np.inf)
    inputs = {"x": x}
    if case.kind == "conv":
        f_h, f_w = case.kernel
        w = rng.standard_normal((f_h, f_w, case.x_shape[3], case.c_out)).astype(dt)
        if case.data == "w_inf" and w.size:
            _sprinkle(rng, w, 1, np.inf)
            _sprinkle(rng, w, 1, -np.inf)
        inputs["w"] = w
        inputs["b"] = rng.standard_normal(case.c_out).astype(dt)
        inputs["dz"] = rng.standard_normal(out_shape).astype(dt)
    else:
        inputs["dp"] = rng.standard_normal(out_shape).astype(dt)
    return inputs


def inputs_digest(case: Case) -> str:
    """sha256 over the case's inputs (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, a in sorted(make_inputs(case).items()):
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------

def _conv_outputs(case: Case, inp: Dict[str, np.ndarray], t: int) -> Dict[str, np.ndarray]:
    import cyconv

    x, w, b, dz = inp["x"], inp["w"], inp["b"], inp["dz"]
    kw = dict(stride=case.stride, padding=case.padding, num_threads=t)
    out: Dict[str, np.ndarray] = {}
    v = case.variant
    if v == "bias4d":        # b as (1, 1, 1, c_out): the checked path
        b = b.reshape(1, 1, 1, -1)
    elif v == "fortran":     # any layout: copied to C order before the kernel
        x, w, dz = np.asfortranarray(x), np.asfortranarray(w), np.asfortranarray(dz)
    elif v == "mixed":       # float32 x with float64 w: computes in float64
        x = x.astype(np.float32)
    elif v == "int":         # integer x: computes in float64
        x = np.rint(x * 3).astype(np.int64)
    if case.grads is None:
        if v == "nobias":
            out["z"] = cyconv.conv2d(x, w, **kw)
        elif v == "out":
            z = np.full(output_shape(case), np.nan, dtype=case.dtype)
            res = cyconv.conv2d(x, w, b, out=z, **kw)
            assert res is z
            out["z"] = z
        else:
            out["z"] = cyconv.conv2d(x, w, b, **kw)
        grads = cyconv.conv2d_backward(dz, x, w, **kw)
    else:
        grads = cyconv.conv2d_backward(dz, x, w, grads=case.grads, **kw)
    for name, g in zip(("dx", "dw", "db"), grads):
        if g is not None:
            out[name] = g
    return out


def _maxpool_outputs(case: Case, inp: Dict[str, np.ndarray], t: int) -> Dict[str, np.ndarray]:
    import cyconv

    x, dp = inp["x"], inp["dp"]
    if case.variant == "float16":   # computes in float32
        x = x.astype(np.float16)
    kw = dict(stride=case.stride, padding=case.padding, num_threads=t)
    out: Dict[str, np.ndarray] = {}
    out["p"] = cyconv.max_pool2d(x, case.kernel, **kw)
    p, idx = cyconv.max_pool2d(x, case.kernel, return_indices=True, **kw)
    out["p_indices"] = p
    out["indices"] = idx
    out["dx_from_x"] = cyconv.max_pool2d_backward(dp, x, case.kernel, **kw)
    given = idx.astype(np.int64) if case.variant == "int64_indices" else idx
    out["dx_from_indices"] = cyconv.max_pool2d_backward(dp, x, case.kernel, indices=given,
                                                        **kw)
    return out


def _all_ties_outputs(case: Case, inp: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    # The course's tie rule (every tied maximum gets the gradient): only
    # cyconv.compat reaches it, with square pools, int strides, no padding
    # and the default thread count.
    from cyconv import compat

    f, s = case.kernel[0], case.stride
    cache = (inp["x"], {"f": f, "stride": s})
    return {"dx_all_ties": compat.pool_backward(inp["dp"], cache, mode="max")}


def _compat_applies(case: Case) -> bool:
    return (case.kind == "maxpool" and case.kernel[0] == case.kernel[1]
            and isinstance(case.stride, int) and case.padding == 0 and not case.variant)


def _avgpool_outputs(case: Case, inp: Dict[str, np.ndarray], t: int) -> Dict[str, np.ndarray]:
    import cyconv

    x, dp = inp["x"], inp["dp"]
    kw = dict(stride=case.stride, padding=case.padding, num_threads=t)
    out: Dict[str, np.ndarray] = {}
    for cip, tag in ((True, "incl"), (False, "excl")):
        out[f"p_{tag}"] = cyconv.avg_pool2d(x, case.kernel, count_include_pad=cip, **kw)
        out[f"dx_{tag}"] = cyconv.avg_pool2d_backward(dp, x.shape, case.kernel,
                                                      count_include_pad=cip, **kw)
    return out


_RUNNERS = {"conv": _conv_outputs, "maxpool": _maxpool_outputs, "avgpool": _avgpool_outputs}


def thread_counts(case: Case) -> Tuple[int, ...]:
    """num_threads values the case runs at.

    Convolutions of >= 131072 multiply-adds (the kernels' own threshold;
    below it they run one thread whatever num_threads says) and pooling
    inputs of >= 8192 elements run at 1 and 2; the rest at 1 only, which
    keeps the run short on a busy machine (each parallel region can wait a
    scheduler slice for its second thread there)."""
    if case.kind == "conv":
        return THREADS if conv_fmas(case) >= _THREAD_FMAS else THREADS[:1]
    return THREADS if int(np.prod(case.x_shape)) >= 8192 else THREADS[:1]


def run_case(case: Case) -> Dict[str, np.ndarray]:
    """Every output of the case at the current CPU level: name -> array.

    Names are ``"<output>@t<num_threads>"`` for each of ``thread_counts(case)``;
    ``dx_all_ties`` (cyconv.compat, default thread count) has no suffix.
    """
    inp = make_inputs(case)
    out: Dict[str, np.ndarray] = {}
    for t in thread_counts(case):
        for name, a in _RUNNERS[case.kind](case, inp, t).items():
            out[f"{name}@t{t}"] = a
    if _compat_applies(case):
        out.update(_all_ties_outputs(case, inp))
    for name, a in inp.items():  # the kernels must not write their inputs
        assert np.array_equal(a, make_inputs(case)[name], equal_nan=True), (case.name, name)
    return out


def digest(a: np.ndarray) -> Dict[str, Any]:
    """What is stored per output: sha256 of the C-order bytes, dtype, shape, and
    aids for a mismatch report: the sum of the finite values and, if there
    are NaNs, their count and a sha256 with every NaN made the same NaN."""
    a = np.asarray(a)
    d: Dict[str, Any] = {
        "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(),
        "dtype": a.dtype.str,
        "shape": list(a.shape),
    }
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        d["finite_sum"] = float(np.sum(a[np.isfinite(a)], dtype=np.float64))
        if nan.any():
            d["nan"] = int(nan.sum())
            # Same values up to NaN bit patterns (sign, payload)?
            c = np.where(nan, np.array(np.nan, dtype=a.dtype), a)
            d["sha256_nan_canonical"] = hashlib.sha256(
                np.ascontiguousarray(c).tobytes()).hexdigest()
    return d


# --------------------------------------------------------------------------
# Which kernel paths a case takes (conditions of commit 974173a)
# --------------------------------------------------------------------------

def _lanes(level: str, itemsize: int) -> int:
    return _VBYTES[level] // itemsize


def _tile_level(level: str, itemsize: int, channels: int) -> str:
    # _conv.pyx _tile_level: <= 32 bytes of channels run the AVX2 tile on AVX-512.
    if level == "x86-64-v4" and channels * itemsize <= 32:
        return "x86-64-v3"
    return level


def _has_interior(p: int, f: int, s: int, n: int, n_out: int) -> bool:
    # _conv.pyx _interior_columns: some output column's window lies inside x.
    first = 0 if p <= 0 else -(-p // s)
    t = n - 1 + p - (f - 1)
    end = 0 if t < 0 else min(t // s + 1, n_out)
    return end > min(first, n_out)


def _has_empty_window(p: int, f: int, s: int, n: int, n_out: int) -> bool:
    # Some window along this axis lies wholly in the padding (_window.pxd).
    return any(max(p - o * s, 0) >= min(n + p - o * s, f) for o in range(n_out))


def conv_fmas(case: Case) -> int:
    m, o_h, o_w, c_out = output_shape(case)
    return m * o_h * o_w * c_out * case.kernel[0] * case.kernel[1] * case.x_shape[3]


def _all_finite_w(case: Case) -> bool:
    return case.data != "w_inf"


def paths(case: Case, level: str) -> set:
    """Names of the kernel paths the case takes at ``level``: for convolutions
    the forward/dx/dw variants, tile level and vectors per pixel; for pooling
    the level module, channel-block tails and window layout."""
    out = set()
    it = np.dtype(case.dtype).itemsize
    if case.variant in ("mixed", "int"):
        it = 8
    if case.kind == "conv":
        m, n_h, n_w, c_in = case.x_shape
        f_h, f_w = case.kernel
        c_out = case.c_out
        s_h, s_w = _pair(case.stride)
        (p_t, _), (p_l, _) = pads(case)
        _, o_h, o_w, _ = output_shape(case)
        if c_in == 0:
            return {"conv:no-input-channels"}
        if conv_fmas(case) >= _THREAD_FMAS:
            out.add("conv:threaded")
        fwd = case.grads is None
        want_dx = case.grads is None or "dx" in case.grads
        want_dw = case.grads is None or "dw" in case.grads
        if case.grads is not None and "db" in case.grads and not want_dw:
            out.add("conv:db-without-dw")
        # forward: narrow-image copy of x
        R = max((o_w - 1) * s_w - p_l + f_w - n_w, 0)
        if fwd:
            if ((f_w - 1) * 8 > n_w and (p_l > 0 or R > 0) and p_l <= f_w and R <= f_w
                    and _all_finite_w(case)):
                out.add("fwd:narrow-copy")
            else:
                out.add("fwd:in-place")
                if not _has_interior(p_l, f_w, s_w, n_w, o_w):
                    out.add("fwd:edge-only-columns")
            lev = _tile_level(level, it, c_out)
            out.add(f"fwd:tile@{lev}:nv{1 if c_out <= _lanes(lev, it) else 2}")
        if want_dx:
            dot_level = level
            order = list(LEVEL_NAMES)
            while order.index(dot_level) > 0 and c_out % _lanes(dot_level, it):
                dot_level = order[order.index(dot_level) - 1]
            if c_in <= 4 and c_out % _lanes(dot_level, it) == 0 and it == 4:
                out.add(f"dx:dot@{dot_level}")
            else:
                lev = _tile_level(level, it, c_in)
                out.add(f"dx:tile@{lev}:nv{1 if c_in <= _lanes(lev, it) else 2}")
            if (f_w - 1) * 8 > n_w:
                out.add("dx:narrow-copy" if _all_finite_w(case) else "dx:narrow-skipped-nonfinite")
        if want_dw:
            lev = _tile_level(level, it, c_out)
            nv = 1 if c_out <= _lanes(lev, it) else 2
            nb = nv * _lanes(lev, it)
            out.add(f"dw:tile@{lev}:nv{nv}")
            out.add("dw:packed-dz" if c_out % nb else "dw:in-place-dz")
            group = max(1, min(m * o_h, _DW_GROUP_PIXELS // o_w))
            if m * o_h > group:
                out.add("dw:several-row-groups")
            if not _has_interior(p_l, f_w, s_w, n_w, o_w):
                out.add("dw:no-interior-columns")
    else:
        c = case.x_shape[3]
        i = LEVEL_NAMES.index(level)
        while i > 0 and c * it < _VBYTES[LEVEL_NAMES[i]]:
            i -= 1
        mod = LEVEL_NAMES[i]
        cb = 32 if _VBYTES[mod] >= 64 else 16
        lanes = _VBYTES[mod] // it
        tail = c % cb
        out.add(f"pool:module@{mod}")
        out.add(f"pool:full-blocks" if c >= cb else "pool:no-full-block")
        if tail:
            out.add("pool:tail-vectors" if tail >= lanes else "pool:tail-scalar-only")
            if tail % lanes:
                out.add("pool:scalar-tail")
        f = case.kernel
        s = _pair(case.stride) if case.stride is not None else f
        disjoint = s[0] >= f[0] and s[1] >= f[1]
        out.add("pool:disjoint" if disjoint else "pool:overlapping")
        if disjoint and (s[0] > f[0] or s[1] > f[1]):
            out.add("pool:gaps")
        _, o_h, o_w, _ = output_shape(case)
        (pt, _), (pl, _) = pads(case)
        if (_has_empty_window(pt, f[0], s[0], case.x_shape[1], o_h)
                or _has_empty_window(pl, f[1], s[1], case.x_shape[2], o_w)):
            out.add("pool:window-wholly-in-padding")
        if _compat_applies(case):
            out.add("pool:all-ties-" + ("disjoint" if disjoint else "gather"))
    return out


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

_DTYPES = ("float32", "float64")


def _fmt_shape(shape) -> str:
    return "x".join(str(int(v)) for v in shape)


def _fmt_stride(s: Any) -> str:
    return str(s) if np.isscalar(s) else _fmt_shape(s)


def _fmt_padding(p: Any) -> str:
    # Names stay usable in ``pytest -k``: no brackets, commas or spaces.
    if isinstance(p, str) or np.isscalar(p):
        return str(p)
    if np.isscalar(p[0]):
        return _fmt_shape(p)
    (t, b), (l, r) = p
    return f"t{t}b{b}l{l}r{r}"


def _conv(tag: str, x_shape, kernel, c_out, stride=1, padding=0, data="normal",
          grads=None, variant="", dtypes=_DTYPES):
    out = []
    for dt in dtypes:
        name = (f"conv-{tag}-in{_fmt_shape(x_shape)}-k{_fmt_shape(kernel)}-co{c_out}"
                f"-s{_fmt_stride(stride)}-p{_fmt_padding(padding)}")
        if data != "normal":
            name += f"-{data}"
        if grads is not None:
            name += "-grads-" + "+".join(grads)
        if variant:
            name += f"-{variant}"
        name += "-" + dt
        out.append(Case(name=name, kind="conv", x_shape=tuple(x_shape), kernel=tuple(kernel),
                        c_out=c_out, stride=stride, padding=padding, dtype=dt, data=data,
                        grads=grads, variant=variant))
    return out


def _pool(kind: str, tag: str, x_shape, kernel, stride, padding=0, data="normal",
          variant="", dtypes=_DTYPES):
    out = []
    for dt in dtypes:
        name = (f"{kind}-{tag}-in{_fmt_shape(x_shape)}-k{_fmt_stride(kernel)}"
                f"-s{_fmt_stride(stride)}-p{_fmt_padding(padding)}")
        if data != "normal":
            name += f"-{data}"
        if variant:
            name += f"-{variant}"
        name += "-" + dt
        k = _pair(kernel)
        out.append(Case(name=name, kind=kind, x_shape=tuple(x_shape), kernel=k,
                        stride=stride, padding=padding, dtype=dt, data=data, variant=variant))
    return out


def _build() -> list:
    c = []
    # --- dx dot-product form (float32, c_in <= 4, c_out % lanes == 0) -----
    c += _conv("dot", (2, 16, 16, 3), (3, 3), 16, 1, 1)                 # dot@v4, threaded
    c += _conv("dot-narrow", (1, 12, 12, 1), (5, 5), 8, 2, "same")      # dot@v3, narrow copies
    c += _conv("dot-narrow", (2, 9, 10, 4), (3, 3), 24, 1, ((1, 0), (2, 1)))
    c += _conv("dot-narrow", (2, 20, 20, 2), (7, 7), 64, 2, 3)          # threaded
    c += _conv("dot-wide", (1, 10, 40, 3), (3, 3), 32, 1, 1)            # threaded, no copy
    c += _conv("dot", (1, 8, 9, 4), (3, 3), 4, 1, 1)                    # dot@baseline
    c += _conv("dot", (3, 7, 13, 3), (3, 1), 12, (1, 2), (1, 2))        # dot@baseline, s (1,2)
    c += _conv("dot-wide", (1, 6, 30, 2), (1, 3), 16, 1, (0, 1))
    # --- few input channels, c_out not a multiple of 4: register tile -----
    c += _conv("small-cin", (2, 8, 14, 3), (3, 3), 5, 1, 1)
    c += _conv("small-cin", (1, 9, 9, 2), (1, 3), 7, (2, 1), "same")
    # --- channel blocks and tails --------------------------------------
    c += _conv("blocks", (1, 7, 13, 17), (3, 3), 33, 1, 1)
    c += _conv("blocks", (1, 6, 11, 31), (3, 3), 9, 2, "valid")
    c += _conv("blocks", (2, 5, 19, 33), (1, 1), 31, 1, 0)
    c += _conv("blocks", (1, 8, 17, 64), (3, 3), 17, 1, 1)              # threaded
    c += _conv("blocks", (1, 6, 14, 9), (5, 5), 64, 1, 2)               # threaded
    c += _conv("blocks", (1, 5, 8, 5), (3, 3), 2, 1, "same")
    c += _conv("blocks", (2, 6, 12, 7), (3, 3), 3, 3, 1)
    c += _conv("blocks", (4, 5, 23, 24), (3, 3), 1, 1, 1)
    c += _conv("blocks", (1, 6, 21, 24), (5, 5), 16, (1, 2), 2)         # threaded
    c += _conv("blocks", (1, 5, 26, 16), (3, 3), 24, 1, ((0, 2), (1, 0)))
    c += _conv("blocks", (1, 4, 18, 8), (3, 3), 8, 2, 1)
    # --- "same" with even kernels --------------------------------------
    c += _conv("same-even", (1, 7, 9, 8), (2, 2), 16, 2, "same")
    c += _conv("same-even", (1, 10, 10, 16), (4, 4), 24, 1, "same")     # threaded
    c += _conv("same-even", (2, 9, 7, 5), (4, 2), 9, (2, 3), "same")
    # --- narrow images: zero-padded copies of x (forward) and dz (dx) ----
    c += _conv("narrow", (1, 6, 5, 8), (3, 3), 8, 1, 1)
    c += _conv("narrow", (2, 7, 9, 5), (5, 5), 16, 1, 2)
    c += _conv("narrow", (1, 9, 11, 3), (7, 7), 7, 1, 3)
    c += _conv("narrow", (3, 8, 12, 9), (3, 3), 17, 1, 1)
    c += _conv("narrow-right-pad", (1, 6, 8, 4), (3, 3), 16, 1, ((0, 0), (0, 2)))
    c += _conv("narrow-valid", (2, 6, 10, 5), (3, 3), 8, 1, "valid")    # dx copy only
    # --- kernel wider than the image ------------------------------------
    c += _conv("wider-than-image", (1, 4, 6, 2), (7, 7), 5, 1, 3)
    c += _conv("wider-than-image", (1, 5, 3, 4), (5, 5), 8, 1, 2)
    c += _conv("wider-than-image", (1, 5, 3, 4), (5, 5), 8, 1, 2, data="w_inf")   # edge-only
    c += _conv("taller-than-image", (1, 2, 20, 8), (5, 3), 8, 1, 2)
    # --- padding beyond the kernel: copies rejected, windows in the padding
    c += _conv("pad-beyond-kernel", (1, 4, 2, 3), (3, 3), 4, 1, 4)
    c += _conv("pad-beyond-kernel", (1, 5, 6, 3), (3, 3), 8, 1, ((0, 1), (1, 5)))
    # --- non-finite values -----------------------------------------------
    c += _conv("w-inf", (1, 6, 9, 3), (3, 3), 8, 1, 1, data="w_inf")
    c += _conv("w-inf", (2, 7, 20, 16), (3, 3), 16, 1, 1, data="w_inf")
    c += _conv("x-nan", (2, 8, 12, 5), (3, 3), 16, 1, 1, data="x_nan")
    c += _conv("x-nan", (1, 6, 25, 24), (3, 3), 33, 2, 1, data="x_nan")
    # --- strides with gaps, 1x1, dw row groups ---------------------------
    c += _conv("gaps", (2, 9, 9, 16), (1, 1), 8, 3, 0)
    c += _conv("gaps", (1, 8, 8, 4), (2, 2), 8, 3, 1)
    c += _conv("pointwise", (2, 12, 20, 64), (1, 1), 64, 1, 0)          # threaded
    c += _conv("dw-groups", (2, 32, 32, 8), (3, 3), 16, 1, "same")      # threaded
    c += _conv("dw-groups", (1, 40, 30, 3), (3, 3), 5, 1, 1)            # threaded
    c += _conv("unequal", (1, 10, 15, 6), (3, 5), 10, (1, 2), ((2, 1), (0, 3)))
    c += _conv("unequal", (4, 11, 9, 2), (5, 3), 4, (3, 1), (2, 1))
    # --- conv2d_backward's grads subsets --------------------------------
    for g in (("dx",), ("dw",), ("db",), ("dw", "db"), ("dx", "db")):
        c += _conv("grads", (2, 9, 10, 3), (3, 3), 16, 1, 1, grads=g)
    # --- argument forms with a Python path of their own -------------------
    c += _conv("api", (1, 6, 8, 3), (3, 3), 5, 1, 1, variant="nobias")
    c += _conv("api", (1, 6, 8, 3), (3, 3), 5, 1, 1, variant="bias4d")
    c += _conv("api", (1, 6, 8, 3), (3, 3), 5, 1, 1, variant="out")
    c += _conv("api", (2, 6, 8, 3), (3, 3), 5, (1, 1), (1, 1), variant="fortran")
    c += _conv("api", (1, 6, 8, 3), (3, 3), 5, 1, 1, variant="mixed", dtypes=("float64",))
    c += _conv("api", (1, 6, 8, 3), (3, 3), 5, 1, 1, variant="int", dtypes=("float64",))
    c += _conv("no-input-channels", (1, 4, 5, 0), (3, 3), 5, 1, 1)

    # --- pooling ------------------------------------------------------------
    for kind in ("maxpool", "avgpool"):
        nan = "ties_nan" if kind == "maxpool" else "x_nan"
        c += _pool(kind, "overlap", (2, 9, 9, 1), 3, 2, 0, data=nan)
        c += _pool(kind, "overlap", (1, 8, 8, 3), 3, 1, 1, data="ties")
        c += _pool(kind, "tiles", (2, 8, 8, 4), 2, 2, 0, data="ties")
        c += _pool(kind, "tiles", (1, 9, 9, 8), 3, 3, 0)
        c += _pool(kind, "gaps", (1, 10, 10, 15), 2, 3, 0, data=nan)
        c += _pool(kind, "overlap", (2, 7, 7, 16), 3, 2, 1)
        c += _pool(kind, "asym", (1, 6, 9, 17), (2, 3), (1, 2), ((1, 0), (0, 2)), data="ties")
        c += _pool(kind, "pad-ge-pool", (1, 5, 5, 32), 2, 1, 2, data="inf")
        c += _pool(kind, "same", (2, 7, 8, 33), 3, 2, "same", data=nan)
        c += _pool(kind, "disjoint-pad", (1, 6, 6, 48), 2, 2, 1, data="ties")
        c += _pool(kind, "disjoint-pad", (1, 11, 11, 64), 3, 3, 1, data=nan)
        c += _pool(kind, "overlap", (1, 8, 8, 64), 3, 1, "same", data="ties")
        c += _pool(kind, "disjoint-pad-ge-pool", (1, 5, 6, 16), 2, 2, 2)
        c += _pool(kind, "gaps", (2, 11, 12, 33), 2, (3, 4), 0, data="ties")
        c += _pool(kind, "overlap", (1, 12, 12, 17), 3, 2, 0, data="inf")
        c += _pool(kind, "overlap", (3, 9, 9, 48), 3, 2, 0, data="ties")
        c += _pool(kind, "overlap", (1, 10, 14, 32), 3, 1, 0, data="normal")
        c += _pool(kind, "big", (2, 24, 24, 32), 3, 2, 1, data="ties")
    c += _pool("maxpool", "api", (1, 8, 8, 8), 2, 2, 0, variant="int64_indices")
    c += _pool("maxpool", "api", (1, 8, 8, 8), 3, 2, 1, variant="int64_indices")
    c += _pool("maxpool", "api", (1, 8, 8, 24), 3, 2, 1, data="ties", variant="float16",
               dtypes=("float32",))
    names = [k.name for k in c]
    assert len(set(names)) == len(names), "case names must be unique"
    return c


CASES = _build()
CASES_BY_NAME = {k.name: k for k in CASES}
