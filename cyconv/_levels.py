"""The CPU levels cyconv compiles its kernels for, and each level's micro-kernel table.

This file is the one list. ``setup.py`` reads it without importing cyconv
(``runpy``) and, from it, builds one convolution and one pooling module per
level (``_conv``, ``_conv_v3``, ... with that level's compiler features) and
writes ``_levels.h``: the C side of the same table (each level's feature test
and the constants its kernels are compiled with). At run time
``cyconv/_dispatch.py`` reads it to choose a module per call. Adding a level,
or changing one level's tiles, is an edit of this file alone.

Plain data and pure functions only: no imports from the package.
"""
from __future__ import annotations

from typing import NamedTuple

_V3 = ("avx", "avx2", "fma", "bmi", "bmi2", "f16c")
_V4 = _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")


class Level(NamedTuple):
    """One CPU level and the micro-kernel configuration its modules are built with.

    Attributes
    ----------
    name : str
        The public name (``cyconv.cpu_level()``, ``CYCONV_CPU_LEVEL``).
    suffix : str
        Module suffix: ``cyconv._conv<suffix>``, ``cyconv._pool<suffix>``.
    features : tuple of str
        GCC/Clang target features: ``-m<feature>`` at build time and
        ``__builtin_cpu_supports("<feature>")`` at run time, the same list.
    vbytes : int
        Vector width in bytes (lanes = vbytes / itemsize).
    conv_pixels : (int, int)
        Convolution register tile: most pixels for 1 and for 2 vectors of
        output channels per pixel (the tile is pixels x vectors).
    dot_tile : (int, int)
        The float32 dot-product tile of dx for few input channels: most
        pixels x input channels.
    dw_group_pixels : int
        Output pixels per group of rows in the dw reduction (cache blocking).
    dw_group_pixels_no_edges : int
        The same for layers without edge columns (every output column's
        window inside x), whose sums run in pixel order whatever the groups:
        smaller, so that a group's x and dz panels stay in the L2 cache
        (measured 1 thread, S7 dw: +4 % at x86-64-v3 and x86-64-v4).
    dw_pack_x_bytes : int
        dw copies a tile's x values into a unit-stride panel when one
        output pixel's x values (stride x channels x itemsize) span more
        than this many bytes.
    dw_pack_dz_bytes : int
        dw copies each row group's dz into (block, pixel, NB) panels when one
        output pixel's dz values span more than this many bytes (and always
        when the last block of output channels is partial).
    min_parallel_fmas : int
        Below this many multiply-adds a convolution runs on one thread.
    narrow_bytes : int
        A layer whose channels fill at most this many bytes runs the level
        below (0: never): half-empty vectors would waste the difference.
    pool_block : int
        Channels per pooling block (a multiple of the float32 lanes).
    dot_dx_dtypes : tuple of str
        dtypes whose dx of few input channels takes the dot-product tile
        (measured: for float64 the register tile wins).
    """

    name: str
    suffix: str
    features: tuple[str, ...]
    vbytes: int
    conv_pixels: tuple[int, int] = (8, 6)
    dot_tile: tuple[int, int] = (4, 3)
    dw_group_pixels: int = 1024
    dw_group_pixels_no_edges: int = 512
    dw_pack_x_bytes: int = 256
    dw_pack_dz_bytes: int = 64
    min_parallel_fmas: int = 131072
    narrow_bytes: int = 0
    pool_block: int = 16
    dot_dx_dtypes: tuple[str, ...] = ("float32",)


# Lowest first; a level's index is its number in C (CYC_LEVEL) and Python.
LEVELS: tuple[Level, ...] = (
    Level("baseline", "", (), 16),
    Level("x86-64-v3", "_v3", _V3, 32),
    # 64-byte vectors: a block of 32 float32 channels is two vectors, two
    # independent max chains; layers of <= 32 bytes of channels run at v3.
    # 32 vector registers: conv tiles of 12 x 1 and 8 x 2 vectors (measured
    # 1 thread, float32, against 8 x 1 / 6 x 2: S6 fwd/dx -5 %, dw -11 %; S4
    # and a 32x32x32 layer unchanged; 14 x 1 / 10 x 2 was slower).
    # The dx dot tile ends with a sum across the lanes of each of its 12
    # accumulators; over 16 lanes that costs more than the FMAs of a short
    # reduction save (S5 dx float32, 1 thread: 43 GFLOP/s here, 76 at v3's
    # 8 lanes), so float32 dx of few input channels runs v3's dot tile.
    # dw reads dz in place when a pixel's dz values span at most 256 bytes:
    # its tiles' 2 vectors then take half of such a row or more, and the copy
    # cost more than it saved (S4, S5 float32 dw, 1 thread: -1..-2 %).
    Level("x86-64-v4", "_v4", _V4, 64, conv_pixels=(12, 8), narrow_bytes=32, pool_block=32,
          dot_dx_dtypes=(), dw_pack_dz_bytes=256),
)

NAMES: tuple[str, ...] = tuple(level.name for level in LEVELS)


def lanes(level: int, itemsize: int) -> int:
    """Elements of ``itemsize`` bytes per vector at ``level``."""
    return LEVELS[level].vbytes // itemsize


def c_header() -> str:
    """The text of ``_levels.h`` (written by setup.py; the C side of this table)."""
    out = [
        "/* Generated by setup.py from cyconv/_levels.py: edit that file, not this one. */",
        "#ifndef CYCONV_LEVELS_H",
        "#define CYCONV_LEVELS_H",
        "",
        f"enum {{ CYC_N_LEVELS = {len(LEVELS)} }};",
        "",
        "/* The level this module is compiled for (setup.py passes -DCYC_LEVEL=i). */",
        "#ifndef CYC_LEVEL",
        "#define CYC_LEVEL 0",
        "#endif",
    ]
    for i, lv in enumerate(LEVELS):
        out += [
            "",
            f"#if CYC_LEVEL == {i}  /* {lv.name} */",
            f"#define CYC_VBYTES {lv.vbytes}",
            f"#define CYC_MR1 {lv.conv_pixels[0]}",
            f"#define CYC_MR2 {lv.conv_pixels[1]}",
            f"#define CYC_DOT_MP {lv.dot_tile[0]}",
            f"#define CYC_DOT_MC {lv.dot_tile[1]}",
            f"#define CYC_DW_GROUP_PIXELS {lv.dw_group_pixels}",
            f"#define CYC_DW_GROUP_PIXELS_NO_EDGES {lv.dw_group_pixels_no_edges}",
            f"#define CYC_DW_PACK_X_BYTES {lv.dw_pack_x_bytes}",
            f"#define CYC_DW_PACK_DZ_BYTES {lv.dw_pack_dz_bytes}",
            f"#define CYC_MIN_PARALLEL_FMAS {lv.min_parallel_fmas}",
            f"#define CYC_POOL_BLOCK {lv.pool_block}",
            "#endif",
        ]
    # The run-time test: the highest level whose every feature this CPU (and
    # its OS: libgcc checks the saved vector state) has. Only on x86-64 with
    # GCC/Clang; elsewhere (and with CYCONV_NO_CPU_DISPATCH) the baseline.
    out += [
        "",
        "#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) \\",
        "    && !defined(CYCONV_NO_CPU_DISPATCH)",
        "static int cyc_cpu_max_level(void) {",
        "    int level = 0;",
        "    __builtin_cpu_init();",
    ]
    for i, lv in enumerate(LEVELS[1:], start=1):
        test = " && ".join(f'__builtin_cpu_supports("{f}")' for f in lv.features)
        out += [f"    if (!({test})) return level;", f"    level = {i};"]
    out += [
        "    return level;",
        "}",
        "#else",
        "static int cyc_cpu_max_level(void) { return 0; }",
        "#endif",
        "",
        "#endif",
        "",
    ]
    return "\n".join(out)
