"""The cascade table of the seed README: validation accuracy by SSL generation (rows) and head (columns).

Cascade members are named ``cascade-g{gen}-{head}-r{round}`` (docs/contracts.md); each (generation,
pseudo-label round) pair is one row, labelled ``gen{g}`` for round 0 and ``gen{g} + pseudo r{r}``
otherwise, ordered by round then generation. Cells missing from the grid stay empty (NaN).
"""

from __future__ import annotations

import re

import pandas as pd

CASCADE_ID = re.compile(r"cascade-g(?P<gen>[0-9]+)-(?P<head>[A-Za-z0-9_.]+)-r(?P<round>[0-9]+)")


def row_label(gen: int, round_: int) -> str:
    return f"gen{gen}" if round_ == 0 else f"gen{gen} + pseudo r{round_}"


def cascade_table(accuracy: dict[str, float]) -> pd.DataFrame:
    """[rows (generation, round), columns heads] accuracies of the cascade members in ``accuracy``.

    ``accuracy`` maps member ids to a score; ids that are not cascade members are ignored.
    Heads keep their first-seen order. An empty frame if there is no cascade member.
    """
    cells = []
    for member, value in accuracy.items():
        match = CASCADE_ID.fullmatch(member)
        if match:
            cells.append((int(match["gen"]), int(match["round"]), match["head"], value))
    if not cells:
        return pd.DataFrame()
    heads = list(dict.fromkeys(head for _, _, head, _ in cells))
    rows = sorted({(round_, gen) for gen, round_, _, _ in cells})
    table = pd.DataFrame(index=[row_label(gen, round_) for round_, gen in rows], columns=heads, dtype=float)
    for gen, round_, head, value in cells:
        table.loc[row_label(gen, round_), head] = value
    table.index.name = "encoder"
    return table
