"""The SSL-objective plug-in interface: what the cascade needs to know about a pretraining method.

A method (MAE-2D, VideoMAE, JEPA, ...) is an :class:`SSLMethod`: it builds its pretraining model around an
encoder of the registry, computes one step's loss on a batch of augmented clips, scores a finished model on a
fixed probe, declares the settings its CLI exposes (stored in the encoder's ``model_config["ssl"]``), and names
the modules it rebuilds fresh every generation. The cascade (:mod:`whatnext.ssl.cascade`) reloads the
``encoder`` attribute of the model from the parent generation and nothing else, so everything in ``reset``
starts from its seeded initialisation, with a fresh optimiser and schedule.

The methods are registered in :mod:`whatnext.ssl.methods`; the cascade driver looks them up by the name its CLI
was built for and names none itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.zip_dataset import ClipDataset


@dataclass(frozen=True)
class Setting:
    """A method setting: CLI flag ``--{name with dashes}``, type, default and help; its value goes to
    ``model_config["ssl"][name]``."""

    name: str
    type: type | object  # a Python type or a click ParamType
    default: object
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class SSLMethod:
    """One SSL objective.

    Attributes:
        name: the method name (``ssl.<family>.method`` in the config, the CLI ``pretrain_<name>``); also the
            ``family`` recorded in its encoder checkpoints, which a next generation must match.
        build: ``model_config -> nn.Module`` with an ``encoder`` attribute (a registry encoder built from
            ``model_config``) and freshly initialised other modules; ``ValueError`` for an encoder or setting
            the method cannot use.
        loss: ``(model, clips) -> scalar tensor``: one step's loss on augmented, normalised clips
            float [B, T, C, H, W]; may draw from torch's global RNG (masks).
        probe: ``(model, clips, normaliser) -> float``: a deterministic score of the finished model on the first
            clips of a split (unaugmented), comparable across generations.
        settings: the method's CLI settings.
        reset: names of the model's modules rebuilt fresh every generation (everything but ``encoder``).
        schedule: ``(model, steps_per_epoch) -> None``, called once the trainer is built and before a resume
            state is loaded, for settings the model counts in epochs (the TATS warm-up); None: nothing to tell.
    """

    name: str
    build: Callable[[dict], nn.Module]
    loss: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    probe: Callable[[nn.Module, ClipDataset, ClipNormaliser], float]
    settings: tuple[Setting, ...]
    reset: tuple[str, ...]
    schedule: Callable[[nn.Module, int], None] | None = None
