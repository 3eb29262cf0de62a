"""Member lists and the stacked member probabilities the ensemble stages work on.

A member list is one member id a line; ``#`` starts a comment, blank lines are ignored
(the seed's ``configs/track_a_members.txt``). Ids are ``[A-Za-z0-9_.-]+``.

:func:`load_members` reads, for every listed member, each requested probability cache
(e.g. ``train-val`` and ``train-test``), aligns it to the reference clip order of the data
dir, and stacks the members whose caches are all usable. A member with no cache folder
(an unknown member) or any unusable cache (missing, unreadable, wrong shape or dtype,
non-finite, not normalised, ids that are not the reference clips) is skipped as a whole
and listed with the reason: coverage is never
reduced silently, and with ``strict=True`` any skip is an error. Caches holding exactly
the reference clips in another order are re-ordered by id and listed as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from whatnext.runtime.prob_cache import ProbCacheError, cache_path, read_prob_cache

MEMBER_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


class MemberError(ValueError):
    """A member list or member set the ensemble cannot work with."""


def read_member_list(path: str | Path) -> list[str]:
    """Member ids in file order; errors name the file and line of a bad or repeated id."""
    path = Path(path)
    if not path.is_file():
        raise MemberError(f"{path}: member list not found")
    members: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not MEMBER_ID.match(line):
            raise MemberError(f"{path}:{number}: {line!r} is not a member id ([A-Za-z0-9_.-]+)")
        if line in members:
            raise MemberError(f"{path}:{number}: member {line!r} is listed twice")
        members.append(line)
    if not members:
        raise MemberError(f"{path}: the member list is empty")
    return members


@dataclass(frozen=True)
class CacheRequest:
    """One cache every member must provide: ``{fit}-{split}`` aligned to ``ids`` (unicode [n])."""

    fit: str
    split: str
    ids: np.ndarray


@dataclass(frozen=True)
class SkippedMember:
    member: str
    reason: str  # "unknown member" or a ProbCacheError reason, e.g. "missing cache", "id mismatch", "non-finite"
    detail: str  # the full message, naming the file and the clip at fault


@dataclass
class MemberStack:
    """The usable members and their probabilities, one float32 [M, n, C] array per request."""

    members: list[str]
    probs: dict[str, np.ndarray]  # key "{fit}-{split}"
    skipped: list[SkippedMember] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)  # "member: file" re-ordered by clip id

    def report(self) -> dict:
        """JSON-able summary of which members were used, skipped (and why) or re-ordered."""
        return {
            "members_used": list(self.members),
            "members_skipped": [vars(s) for s in self.skipped],
            "caches_reordered": list(self.reordered),
        }


def request_key(fit: str, split: str) -> str:
    return f"{fit}-{split}"


def aligned_probs(path: Path, request: CacheRequest, num_classes: int) -> tuple[np.ndarray, bool]:
    """The cache's probs in the request's clip order, and whether it had to be re-ordered."""
    cache = read_prob_cache(path, num_classes=num_classes)
    if np.array_equal(cache.ids, request.ids):
        return cache.probs, False
    missing = np.setdiff1d(request.ids, cache.ids)
    extra = np.setdiff1d(cache.ids, request.ids)
    if len(missing) or len(extra):
        what = f"missing clip {str(missing[0])!r}" if len(missing) else f"unexpected clip {str(extra[0])!r}"
        raise ProbCacheError(
            f"{path}: ids are not the {request.split} clips of the data dir ({what}; "
            f"{len(missing)} missing, {len(extra)} unexpected)",
            "id mismatch",
        )
    position = {clip: i for i, clip in enumerate(cache.ids.tolist())}
    order = np.fromiter((position[clip] for clip in request.ids.tolist()), dtype=np.int64, count=len(request.ids))
    return cache.probs[order], True


def load_members(
    cache_dir: str | Path,
    members: list[str],
    requests: list[CacheRequest],
    num_classes: int,
    strict: bool = False,
) -> MemberStack:
    """Stack the members whose every requested cache is usable; skip (or, strict, fail on) the rest.

    Raises MemberError for an empty member list, a skip under ``strict``, or no usable member.
    """
    if not members:
        raise MemberError("the member list is empty")
    if not Path(cache_dir).is_dir():
        raise MemberError(f"{cache_dir}: probability cache folder not found")
    used: list[str] = []
    stacks: dict[str, list[np.ndarray]] = {request_key(r.fit, r.split): [] for r in requests}
    skipped: list[SkippedMember] = []
    reordered: list[str] = []
    for member in members:
        loaded: dict[str, np.ndarray] = {}
        member_reordered: list[str] = []
        try:
            if not (Path(cache_dir) / member).is_dir():
                raise ProbCacheError(f"{Path(cache_dir) / member}: no cache folder for this member (unknown member?)", "unknown member")
            for request in requests:
                path = cache_path(cache_dir, member, request.fit, request.split)
                probs, was_reordered = aligned_probs(path, request, num_classes)
                loaded[request_key(request.fit, request.split)] = probs
                if was_reordered:
                    member_reordered.append(f"{member}: {path}")
        except ProbCacheError as err:
            if strict:
                raise MemberError(f"member {member!r} is unusable ({err.reason}): {err}") from None
            skipped.append(SkippedMember(member=member, reason=err.reason, detail=str(err)))
            continue
        used.append(member)
        reordered.extend(member_reordered)
        for key, probs in loaded.items():
            stacks[key].append(probs)
    if not used:
        reasons = "; ".join(f"{s.member}: {s.reason}" for s in skipped)
        raise MemberError(f"no usable member among {len(members)} listed in {cache_dir} ({reasons})")
    return MemberStack(
        members=used,
        probs={key: np.stack(arrays) for key, arrays in stacks.items()},
        skipped=skipped,
        reordered=reordered,
    )
