"""The resume state's file, format and fingerprint check: a state written under another configuration is refused."""

from __future__ import annotations

import json

STATE_FILE = "trainer_state.pt"
STATE_FORMAT = 2  # 2: the stopping state holds the epoch the stop split first beat chance


class ResumeStateError(ValueError):
    """A resume state that cannot be read or belongs to another configuration."""




def jsonable(obj) -> dict:
    """``obj`` as it reads back from JSON (non-JSON values as their ``str``), for comparing fingerprints."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def check_state(state, fingerprint: dict, source) -> None:
    """Raise :class:`ResumeStateError` unless ``state`` is a trainer state of this format written under
    ``fingerprint``; the message names ``source`` and the fingerprint keys that differ."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ResumeStateError(f"{source}: not a whatnext trainer state (format {STATE_FORMAT} expected)")
    if state["fingerprint"] != fingerprint:
        old, new = state["fingerprint"], fingerprint
        keys = sorted(k for k in set(_flatten(old)) | set(_flatten(new)) if _flatten(old).get(k) != _flatten(new).get(k))
        raise ResumeStateError(
            f"{source}: resume state was written by a different configuration (differs in: {', '.join(keys)}); "
            "delete it or use another --resume-dir"
        )


def _flatten(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): obj}
