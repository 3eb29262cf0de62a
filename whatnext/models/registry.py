"""Name -> builder registries for encoders and temporal heads.

Each encoder builder takes ``(img_size, num_frames, **overrides)`` and returns an
``nn.Module`` following the encoder interface of :mod:`whatnext.models` (``forward``
maps [B, T, C, H, W] to tokens [B, T', N, D]). Each head builder takes
``(dim, num_steps, num_classes, **overrides)`` and maps tokens [B, T', N, D] to logits.
"""

from __future__ import annotations

from collections.abc import Callable


class Registry:
    """A named table of builders; an unknown name raises ``ValueError`` listing the known ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[Callable], Callable]:
        """Decorator: register ``fn`` under ``name`` (names are unique)."""

        def add(fn: Callable) -> Callable:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._builders[name] = fn
            return fn

        return add

    def get(self, name: str) -> Callable:
        if name not in self._builders:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._builders[name]

    def names(self) -> list[str]:
        return sorted(self._builders)


ENCODERS = Registry("encoder")
HEADS = Registry("head")
