"""The per-level table (cyconv/_levels.py) is what every compiled module was built with,
and the dispatch rules of cyconv/_dispatch.py pick the modules it describes."""
import numpy as np
import pytest

from cyconv import _dispatch, _levels

AVAILABLE = range(len(_dispatch.cpu_levels()))


def test_levels_list_names_each_level_once_lowest_first():
    assert _dispatch.LEVELS == _levels.NAMES
    assert _levels.NAMES[0] == "baseline" and len(set(_levels.NAMES)) == len(_levels.NAMES)
    widths = [lv.vbytes for lv in _levels.LEVELS]
    assert widths == sorted(widths)


@pytest.mark.parametrize("level", AVAILABLE)
def test_conv_module_of_each_level_was_compiled_with_its_row_of_the_table(level):
    row = _levels.LEVELS[level]
    compiled = _dispatch.module("_conv", level).level_table()
    assert compiled == dict(vbytes=row.vbytes, conv_pixels=row.conv_pixels,
                            dot_tile=row.dot_tile, dw_group_pixels=row.dw_group_pixels,
                            dw_group_pixels_no_edges=row.dw_group_pixels_no_edges,
                            dw_pack_x_bytes=row.dw_pack_x_bytes,
                            dw_pack_dz_bytes=row.dw_pack_dz_bytes,
                            min_parallel_fmas=row.min_parallel_fmas)


@pytest.mark.parametrize("level", AVAILABLE)
def test_pool_module_of_each_level_was_compiled_with_its_row_of_the_table(level):
    row = _levels.LEVELS[level]
    assert _dispatch.module("_pool", level).level_table() == dict(
        vbytes=row.vbytes, pool_block=row.pool_block)


def test_header_text_tests_exactly_the_features_of_each_level():
    text = _levels.c_header()
    for lv in _levels.LEVELS[1:]:
        for feature in lv.features:
            assert f'__builtin_cpu_supports("{feature}")' in text


@pytest.fixture
def at_top_level():
    before = _dispatch.cpu_level()
    _dispatch.set_cpu_level(_dispatch.cpu_levels()[-1])
    yield len(_dispatch.cpu_levels()) - 1
    _dispatch.set_cpu_level(before)


def test_narrow_layers_run_the_level_below_where_the_table_says_so(at_top_level):
    top = at_top_level
    row = _levels.LEVELS[top]
    wide = row.narrow_bytes // 4 + 1
    assert _dispatch.conv_level(4, wide) == top
    if row.narrow_bytes:
        assert _dispatch.conv_level(4, row.narrow_bytes // 4) == top - 1


def test_dx_of_few_input_channels_takes_the_dot_tile_for_float32_only(at_top_level):
    top = at_top_level
    lanes = _levels.lanes(top, 4)
    # the widest level whose row allows the dot tile for float32
    dot_top = max(i for i in range(top + 1) if "float32" in _levels.LEVELS[i].dot_dx_dtypes)
    assert _dispatch.dx_plan("float32", 4, 3, 4 * lanes) == (dot_top, True)
    assert _dispatch.dx_plan("float64", 8, 3, 4 * lanes)[1] is False
    assert _dispatch.dx_plan("float32", 4, 64, 4 * lanes) == (_dispatch.conv_level(4, 64), False)
    # c_out not a multiple of the top level's lanes: the widest level whose lanes divide it
    level, dot = _dispatch.dx_plan("float32", 4, 2, 4)
    assert dot and _levels.lanes(level, 4) == 4


def test_pool_layers_take_the_widest_level_they_fill(at_top_level):
    top = at_top_level
    assert _dispatch.pool_level(4, 1) == 0
    assert _dispatch.pool_level(4, _levels.LEVELS[top].vbytes // 4) == top


def test_set_cpu_level_changes_the_module_of_later_calls(level):
    import cyconv
    x = np.ones((1, 4, 4, 64), np.float32)
    w = np.ones((1, 1, 64, 64), np.float32)
    assert _dispatch.cpu_level() == level
    assert cyconv.conv2d(x, w).shape == (1, 4, 4, 64)
    i = _dispatch.LEVELS.index(level)
    assert _dispatch.conv_level(4, 64) == i
