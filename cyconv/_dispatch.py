"""Which compiled module runs a call: the CPU level in use and the per-layer rules.

Every kernel family (``_conv``, ``_pool``) is built once per CPU level of
``cyconv/_levels.py`` (``_conv``, ``_conv_v3``, ``_conv_v4``, ...). One level
is in use per process (the best this CPU runs, or ``CYCONV_CPU_LEVEL``); a call
runs at that level, or at a lower one where the layer's channels would leave
the level's vectors mostly empty. A module is imported only once its level is
selected, i.e. known to run on this CPU, and every call of one operation runs
in one module, so a call never mixes two vector widths.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from cyconv import _conv, _levels

__all__ = ["LEVELS", "cpu_level", "cpu_levels", "set_cpu_level"]

LEVELS: tuple[str, ...] = _levels.NAMES
"""Every CPU level cyconv knows, lowest first (index = level number)."""

_max_level: int = _conv.cpu_max_level()
_level: int = _max_level
_modules: dict[tuple[str, int], ModuleType] = {("_conv", 0): _conv}

PLANS: dict[tuple[object, ...], Any] = {}
"""The wrappers' cache of chosen kernels, keyed by their own tuples; valid for
the level in use and emptied by :func:`set_cpu_level`."""


def cpu_levels() -> tuple[str, ...]:
    """The CPU levels this build has and this CPU runs, lowest first.

    Returns
    -------
    tuple of str
        A prefix of :data:`LEVELS`; only ``("baseline",)`` off x86-64.
    """
    return LEVELS[:_max_level + 1]


def cpu_level() -> str:
    """The CPU level calls use now (a name from :data:`LEVELS`)."""
    return LEVELS[_level]


def set_cpu_level(name: str) -> None:
    """Make every later call use the CPU level ``name`` (one of :func:`cpu_levels`).

    Raises
    ------
    ValueError
        ``name`` is not a level, or not one this build and CPU run.
    """
    global _level
    if name not in LEVELS:
        raise ValueError(f"unknown CPU level {name!r}; expected one of {', '.join(LEVELS)}")
    if name not in cpu_levels():
        raise ValueError(f"CPU level {name!r} is not supported by this CPU or build; "
                         f"supported: {', '.join(cpu_levels())}")
    _level = LEVELS.index(name)
    PLANS.clear()


def module(family: str, level: int) -> ModuleType:
    """The compiled module of ``family`` (``"_conv"`` or ``"_pool"``) at ``level``."""
    mod = _modules.get((family, level))
    if mod is None:
        mod = importlib.import_module("cyconv." + family + _levels.LEVELS[level].suffix)
        _modules[family, level] = mod
    return mod


def conv_level(itemsize: int, channels: int) -> int:
    """The level of a convolution pass whose vectors run over ``channels``.

    A level with ``narrow_bytes`` hands layers whose channels fill at most
    that many bytes to the level below (half-empty 64-byte vectors would
    waste the difference).
    """
    level = _level
    if channels * itemsize <= _levels.LEVELS[level].narrow_bytes:
        level -= 1
    return level


def dx_plan(dtype_name: str, itemsize: int, c_in: int, c_out: int) -> tuple[int, bool]:
    """``(level, dot)`` for dx: the dot-product tile or the register tile.

    With few input channels a vector over ``c_in`` would be mostly empty, so
    dx takes the dot-product form (vectors over ``c_out``) at the widest level
    whose lanes divide ``c_out`` and whose row allows the dtype.
    """
    level = _level
    while level > 0 and (c_out % _levels.lanes(level, itemsize)
                         or dtype_name not in _levels.LEVELS[level].dot_dx_dtypes):
        level -= 1
    if (c_in <= 4 and c_out % _levels.lanes(level, itemsize) == 0
            and dtype_name in _levels.LEVELS[level].dot_dx_dtypes):
        return level, True
    return conv_level(itemsize, c_in), False


def pool_level(itemsize: int, channels: int) -> int:
    """The level of a pooling call over ``channels`` channels.

    Layers whose channels fill less than one vector of the level (8 float32
    channels on AVX-512, say) take the widest lower level they fill: the
    kernels vectorise over channels, and a part-filled vector is scalar code.
    """
    level = _level
    while level > 0 and channels * itemsize < _levels.LEVELS[level].vbytes:
        level -= 1
    return level


def _level_from_environment() -> None:
    # CYCONV_CPU_LEVEL forces a level at import; a level this CPU cannot run
    # is an error here rather than a crash (illegal instruction) later.
    name = os.environ.get("CYCONV_CPU_LEVEL", "").strip()
    if name:
        try:
            set_cpu_level(name)
        except ValueError as e:
            raise ValueError(f"CYCONV_CPU_LEVEL: {e}") from None


_level_from_environment()
