"""``python -m whatnext.finetune.round_guard``: does a pseudo-label round keep its own weights?

A cascade member of pseudo-label round r trains on train plus the test clips labelled by round r's
stacker (the seed's rule: the ensemble's arg-max, no threshold). That round must not lower the member's
held-out accuracy beyond noise. Both rounds hold out the same stop split (carved from the labelled
training clips by a hash of the clip id, :func:`whatnext.finetune.training_sets.carve_stop_split`), and
each member's metrics JSON records which of its clips the kept weights got right. The guard compares
them clip by clip: with ``b`` clips only the previous round got right and ``c`` only the new one,
the difference of accuracies is ``d = (c - b) / n`` with standard error ``se = sqrt(b + c - (c - b)^2 / n) / n``
(paired, McNemar). If ``d < -noise_z x se`` the round falls back: the member keeps the previous round's
(kept) weights, and the guard says so (``fallback: true``).

Reads: ``--new`` the round-r member's ``train`` metrics JSON; ``--previous`` the previous round's metrics
JSON, or its guard JSON when that round is guarded too (so a fallback chains to the weights actually kept).
Writes ``--out`` (JSON): member, previous member, both accuracies, ``difference``, ``se``, ``noise_z``,
``fallback``, ``kept_member`` (whose weights the member's caches use) and the kept weights' ``stop_split``
record. ``whatnext.inference.cache_probs --guard`` then caches the kept member's checkpoint under this
member's id. Light: no torch.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import click

from whatnext.runtime.atomic import write_json
from whatnext.runtime.errors import BadInput
from whatnext.runtime.logging_setup import cli_logging

log = logging.getLogger(__name__)
NOISE_Z = 1.0


def read_stop_record(path: Path) -> tuple[str, dict]:
    """(member whose weights the file describes, its ``stop_split`` record) from a metrics or guard JSON."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BadInput(f"{path}: unreadable metrics or guard JSON ({err})") from None
    record = document.get("stop_split") if isinstance(document, dict) else None
    if not isinstance(record, dict) or not {"clip_ids", "correct"} <= set(record):
        raise BadInput(f"{path}: no stop_split record (clip_ids, correct); was the member trained with --stop-fraction 0?")
    if len(record["clip_ids"]) != len(record["correct"]) or not record["clip_ids"]:
        raise BadInput(f"{path}: stop_split has {len(record['clip_ids'])} clip ids for {len(record['correct'])} outcomes")
    return document.get("kept_member") or document.get("member"), record


def paired_difference(new: list[int], previous: list[int]) -> tuple[float, float]:
    """(accuracy difference new - previous, its paired standard error) over the same clips (0/1 outcomes)."""
    n = len(new)
    only_new = sum(1 for a, b in zip(new, previous) if a and not b)
    only_previous = sum(1 for a, b in zip(new, previous) if b and not a)
    difference = (only_new - only_previous) / n
    variance = max(0.0, only_new + only_previous - (only_new - only_previous) ** 2 / n)
    return difference, math.sqrt(variance) / n


def decide(member: str, new: dict, previous_member: str, previous: dict, noise_z: float = NOISE_Z) -> dict:
    """The guard's decision (see the module docstring) from two ``stop_split`` records of the same clips."""
    if list(new["clip_ids"]) != list(previous["clip_ids"]):
        raise ValueError(f"{member} and {previous_member} were scored on different stop splits")
    difference, se = paired_difference(new["correct"], previous["correct"])
    fallback = difference < -noise_z * se
    n = len(new["correct"])
    return {
        "member": member, "previous_member": previous_member, "clips": n,
        "new_top1": sum(new["correct"]) / n, "previous_top1": sum(previous["correct"]) / n,
        "difference": difference, "se": se, "noise_z": noise_z, "fallback": fallback,
        "kept_member": previous_member if fallback else member, "stop_split": previous if fallback else new,
    }


def parse_candidates(items: tuple[str, ...]) -> dict[str, Path]:
    """``("MEMBER=CKPT", ...)`` -> {member: checkpoint path}; a malformed item is :class:`BadInput`."""
    found = {}
    for item in items:
        member, sep, path = item.partition("=")
        if not sep or not member or not path:
            raise BadInput(f"--candidate {item!r}: expected MEMBER=CKPT")
        found[member] = Path(path)
    return found


def kept_checkpoint(guard_path: Path, member: str, own: Path, candidates: dict[str, Path]) -> tuple[Path, dict]:
    """(checkpoint to cache for ``member``, the guard's summary for the cache's provenance).

    ``own`` when the guard kept the member's weights, else the kept member's entry of ``candidates``.
    Raises :class:`BadInput` naming the guard for a guard of another member or a kept member without a
    candidate checkpoint."""
    try:
        guard = json.loads(Path(guard_path).read_text(encoding="utf-8"))
        kept, fallback = guard["kept_member"], bool(guard["fallback"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{guard_path}: unreadable round guard ({type(err).__name__}: {err})") from None
    if guard.get("member") != member:
        raise BadInput(f"{guard_path}: is the guard of {guard.get('member')!r}, not of {member!r}")
    summary = {"guard": str(guard_path), "fallback": fallback, "kept_member": kept,
               **{key: guard.get(key) for key in ("previous_member", "new_top1", "previous_top1", "difference", "se")}}
    if kept == member:
        return Path(own), summary
    if kept not in candidates:
        raise BadInput(f"{guard_path}: keeps {kept!r}'s weights, but no --candidate {kept}=CKPT was given")
    return candidates[kept], summary


@click.command()
@click.option("--member", required=True, help="The round-r member id.")
@click.option("--new", "new_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Its train-fit metrics JSON.")
@click.option("--previous", "previous_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The previous round's train-fit metrics JSON, or its guard JSON if that round is guarded.")
@click.option("--previous-member", required=True, help="The previous round's member id.")
@click.option("--noise-z", type=click.FloatRange(min=0), default=NOISE_Z, show_default=True,
              help="Fall back when the new round is worse by more than this many paired standard errors.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Guard JSON to write.")
def main(member, new_path, previous_path, previous_member, noise_z, out):
    """Keep a pseudo-label round's weights unless it lowers the stop-split accuracy beyond noise."""
    with cli_logging(None):
        _, new = read_stop_record(new_path)
        kept_before, previous = read_stop_record(previous_path)
        try:
            decision = decide(member, new, kept_before or previous_member, previous, noise_z)
        except ValueError as err:
            raise BadInput(f"{new_path} vs {previous_path}: {err}") from None
        write_json(out, decision)
        line = (f"{member}: stop-split top-1 {decision['new_top1']:.3f} vs {decision['previous_top1']:.3f} "
                f"({decision['previous_member']}), difference {decision['difference']:+.3f} +- {decision['se']:.3f}")
        if decision["fallback"]:
            log.warning("%s: FALLBACK, the round lowers held-out accuracy beyond noise; keeping %s's weights", line, decision["kept_member"])
        else:
            log.info("%s: keeps its own weights", line)


if __name__ == "__main__":
    main()
