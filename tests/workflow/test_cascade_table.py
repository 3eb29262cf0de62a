"""The report's cascade table (whatnext.analysis.cascade_table) from hand-made accuracies."""

import math

from whatnext.analysis.cascade_table import cascade_table


def test_rows_are_generation_and_round_columns_are_heads():
    table = cascade_table({"cascade-g6-attn-r0": 0.5, "cascade-g6-lstm-r0": 0.4, "cascade-g8-attn-r1": 0.6, "scratch-x": 0.9})
    assert list(table.index) == ["gen6", "gen8 + pseudo r1"]
    assert list(table.columns) == ["attn", "lstm"]
    assert table.loc["gen8 + pseudo r1", "attn"] == 0.6


def test_missing_cell_stays_empty():
    table = cascade_table({"cascade-g6-attn-r0": 0.5, "cascade-g7-lstm-r0": 0.4})
    assert math.isnan(table.loc["gen6", "lstm"])


def test_round_0_rows_come_before_pseudo_rounds():
    table = cascade_table({"cascade-g9-attn-r1": 0.1, "cascade-g10-attn-r0": 0.2, "cascade-g6-attn-r0": 0.3})
    assert list(table.index) == ["gen6", "gen10", "gen9 + pseudo r1"]


def test_no_cascade_member_gives_an_empty_table():
    assert cascade_table({"scratch-x": 0.3}).empty
