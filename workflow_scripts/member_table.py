"""The member table: every ensemble member the config asks for, with its wildcards and settings.

Member ids follow docs/contracts.md: ``cascade-g{gen}-{head}-r{round}``, ``mae2d-{name}``,
``videomae-{name}``, ``jepa-{name}``, ``scratch-{name}``. The five families map one to one to the five
finetune rules; :func:`parse_member_id` is the inverse of the naming and rejects ids no rule can build.
Non-cascade members belong to pseudo-label round 0.

Fold ensembles (the ChaLearn seed): a variant with ``folds: {train: K1, trainval: K2}`` expands into fold
members instead of one member, ``{family}-{name}.fold{i}of{K1}`` (folds of the training clips: the seed's
"train only" members) and ``{family}-{name}.vfold{i}of{K2}`` (folds of train + val: its "train + val"
members), each leaving out its fold (``--fold i/K --fold-pool train|trainval``,
:mod:`whatnext.finetune.folds`). They are members like any other for caches, stacker and sidecar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from workflow_scripts.training_settings import job_seed, merge_settings

FAMILIES = ("cascade", "mae2d", "videomae", "jepa", "scratch")
SSL_METHOD_OF = {"jepa": "jepa"}  # member family -> the SSL method its family must use (others: any)
NAME_RE = r"[A-Za-z0-9_.]+"
MEMBER_ID_PATTERNS = {
    "cascade": re.compile(rf"cascade-g(?P<gen>[0-9]+)-(?P<head>{NAME_RE})-r(?P<round>[0-9]+)"),
    "mae2d": re.compile(rf"mae2d-(?P<name>{NAME_RE})"),
    "videomae": re.compile(rf"videomae-(?P<name>{NAME_RE})"),
    "jepa": re.compile(rf"jepa-(?P<name>{NAME_RE})"),
    "scratch": re.compile(rf"scratch-(?P<name>{NAME_RE})"),
}


class ConfigError(ValueError):
    """A config that is well-formed but asks for something the graph cannot build."""


@dataclass(frozen=True)
class Member:
    """One ensemble member (its train-only model and, with twins, its train+val twin)."""

    id: str
    family: str
    head: str
    round: int = 0
    ssl_family: str | None = None  # SSL family whose encoder it finetunes (None: from scratch)
    ssl_generation: int | None = None
    arch: str | None = None  # scratch encoders only
    aux: tuple[str, ...] = ()
    train: dict = field(default_factory=dict, compare=False)
    seed: int = 0
    fold: str | None = None  # "i/K": the fold this member leaves out (None: not a fold member)
    fold_pool: str = "train"  # clips the folds partition: train or trainval


def parse_member_id(member_id: str) -> tuple[str, dict[str, str]]:
    """(family, wildcards) of a member id; ConfigError if it matches no finetune rule."""
    for family, pattern in MEMBER_ID_PATTERNS.items():
        match = pattern.fullmatch(member_id)
        if match:
            return family, match.groupdict()
    shapes = ", ".join(p.pattern for p in MEMBER_ID_PATTERNS.values())
    raise ConfigError(f"member id {member_id!r} matches no finetune rule (expected one of: {shapes})")


def cascade_id(gen: int, head: str, round_: int) -> str:
    return f"cascade-g{gen}-{head}-r{round_}"


def member_id_of(family: str, wildcards) -> str:
    """The id of the member a finetune rule of ``family`` builds, from the job's wildcards (a mapping, or
    Snakemake's ``Wildcards``): ``gen``, ``head``, ``round`` for cascade members, ``name`` for the others."""

    def get(name: str) -> str:
        return wildcards[name] if isinstance(wildcards, Mapping) else getattr(wildcards, name)

    if family == "cascade":
        return cascade_id(get("gen"), get("head"), get("round"))
    return f"{family}-{get('name')}"


def _ssl_generation(config: dict, section: dict, key: str, method: str | None = None) -> tuple[str, int]:
    ssl_family = section["ssl"]
    families = config.get("ssl", {})
    if ssl_family not in families:
        raise ConfigError(f"{key}.ssl: unknown SSL family {ssl_family!r} (config ssl has {sorted(families)})")
    if method is not None and families[ssl_family]["method"] != method:
        raise ConfigError(f"{key}.ssl: SSL family {ssl_family!r} uses method {families[ssl_family]['method']!r}; "
                          f"these members finetune {method!r} encoders")
    last = families[ssl_family]["generations"]
    gen = section.get("generation", last)
    if not 1 <= gen <= last:
        raise ConfigError(f"{key}.generation: {gen} outside 1..{last} of SSL family {ssl_family!r}")
    return ssl_family, gen


def _cascade_members(config: dict) -> list[Member]:
    section = config.get("members", {}).get("cascade")
    if not section:
        return []
    ssl_family = section["ssl"]
    families = config.get("ssl", {})
    if ssl_family not in families:
        raise ConfigError(f"members.cascade.ssl: unknown SSL family {ssl_family!r} (config ssl has {sorted(families)})")
    if families[ssl_family]["method"] != "videomae":
        raise ConfigError(f"members.cascade.ssl: family {ssl_family!r} must use method videomae (the pseudo-label track)")
    last = families[ssl_family]["generations"]
    overrides = section.get("overrides", {})
    members = []
    for gen in section["generations"]:
        if not 1 <= gen <= last:
            raise ConfigError(f"members.cascade.generations: {gen} outside 1..{last} of SSL family {ssl_family!r}")
        for head in section["heads"]:
            for round_ in section["rounds"]:
                member_id = cascade_id(gen, head, round_)
                members.append(
                    Member(
                        id=member_id,
                        family="cascade",
                        head=head,
                        round=round_,
                        ssl_family=ssl_family,
                        ssl_generation=gen,
                        train=merge_settings(config.get("train"), section.get("train"), overrides.get(member_id)),
                        seed=job_seed(config["seed"], member_id),
                    )
                )
    unknown = sorted(set(overrides) - {m.id for m in members})
    if unknown:
        raise ConfigError(f"members.cascade.overrides: unknown member id {unknown[0]!r} (not in the cascade grid)")
    return members


FOLD_TAGS = {"train": "fold", "trainval": "vfold"}  # fold pool -> the tag of its member ids


def fold_variants(name: str, variant: dict) -> list[tuple[str, str | None, str]]:
    """(member name, fold "i/K" or None, pool) of each member a variant expands into: itself without
    ``folds``, else one per fold of each pool."""
    folds = variant.get("folds")
    if not folds:
        return [(name, None, "train")]
    return [(f"{name}.{FOLD_TAGS[pool]}{i}of{count}", f"{i}/{count}", pool)
            for pool, count in sorted(folds.items()) for i in range(count)]


def _variant_members(config: dict, family: str) -> list[Member]:
    section = config.get("members", {}).get(family)
    if not section:
        return []
    members = []
    for name, variant in section["variants"].items():
        key = f"members.{family}.variants.{name}"
        if family == "scratch":
            ssl_family, gen = None, None
        else:
            ssl_family, gen = _ssl_generation(config, {**section, **variant}, key, SSL_METHOD_OF.get(family))
        for member_name, fold, pool in fold_variants(name, variant):
            member_id = f"{family}-{member_name}"
            members.append(
                Member(
                    id=member_id,
                    family=family,
                    head=variant["head"],
                    ssl_family=ssl_family,
                    ssl_generation=gen,
                    arch=variant.get("arch") if family == "scratch" else None,
                    aux=tuple(variant.get("aux", ())),
                    train=merge_settings(config.get("train"), section.get("train"), variant.get("train")),
                    seed=job_seed(config["seed"], member_id),
                    fold=fold,
                    fold_pool=pool,
                )
            )
    return members


def member_table(config: dict) -> dict[str, Member]:
    """Every member the config defines, by id, in a stable order (cascade, mae2d, videomae, jepa, scratch)."""
    members = _cascade_members(config)
    for family in FAMILIES[1:]:
        members += _variant_members(config, family)
    table = {m.id: m for m in members}
    if len(table) != len(members):
        raise ConfigError("members: two members share an id")
    if not table:
        raise ConfigError("members: the config defines no member")
    _check_rounds(table)
    return table


def _check_rounds(table: dict[str, Member]) -> None:
    for round_ in pseudo_rounds(table):
        if not members_before_round(table, round_):
            raise ConfigError(f"members.cascade.rounds: round {round_} needs pseudo-labels from earlier rounds, but no member has a round below {round_}")


def pseudo_rounds(table: dict[str, Member]) -> list[int]:
    """The pseudo-label rounds (> 0) some member trains on, ascending."""
    return sorted({m.round for m in table.values() if m.round > 0})


def members_before_round(table: dict[str, Member], round_: int) -> list[str]:
    """Ids of the members whose stacker makes the pseudo-labels of ``round_``."""
    return [m.id for m in table.values() if m.round < round_]


def previous_round_member(table: dict[str, Member], member_id: str) -> str | None:
    """The member a pseudo-label round falls back to: the same cascade generation and head in the latest
    configured round before ``member_id``'s (None for round 0, non-cascade members, or no earlier round)."""
    member = table[member_id]
    earlier = [m for m in table.values() if m.family == "cascade" and m.round < member.round
               and (m.ssl_family, m.ssl_generation, m.head) == (member.ssl_family, member.ssl_generation, member.head)]
    if member.family != "cascade" or not earlier:
        return None
    return max(earlier, key=lambda m: m.round).id


def stacked_members(table: dict[str, Member], exclude: list[str] | None = None) -> list[str]:
    """Ids reaching the final stacker: every member not excluded (unknown exclusions are errors)."""
    exclude = list(exclude or [])
    for member_id in exclude:
        parse_member_id(member_id)
        if member_id not in table:
            raise ConfigError(f"ensemble.exclude: unknown member id {member_id!r}")
    return [m for m in table if m not in exclude]


def format_member_list(ids: list[str], comment: str) -> str:
    """A member-list file's text: ``# comment`` then one id a line."""
    return "".join([f"# {line}\n" for line in comment.splitlines()] + [f"{i}\n" for i in ids])


def write_member_list(path: str | Path, ids: list[str], comment: str) -> None:
    """Write a member list atomically (the format ``whatnext.ensemble.members`` reads)."""
    from whatnext.runtime.atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(format_member_list(ids, comment))
