"""Video JEPA: predict the next frame's representation from the past K, in representation space.

After the seed's video JEPA (``video-jepa-readme.md``): an encoder maps each frame to a representation, a
predictor takes the past ``context`` = K frame representations and predicts frame K+1's, rolled out
autoregressively for ``steps`` frames (step s >= 2 feeds the predictor its own earlier predictions), and
the loss is the prediction MSE plus the variance-covariance (VC) regulariser of VICReg on the projected
representations, weighted by ``std_coeff`` and ``cov_coeff``. Encoder and predictor train together, with
gradients through both sides of the prediction loss: without the VC terms the constant representation is
a minimum and the encoder collapses to it (tested).

Shapes: clip x [B, T, C, H, W] (T = 4 frames); representations z [B, T, N, D] (N tokens of width D per
frame, the encoder's token grid); predictions [B, S, N, D] for frames K .. K+S-1 (S = ``steps``,
K + S <= T); projections [M, P] with M = B*T*N.

Encoders: any registry encoder that sees each frame on its own (conv2d_*, timm 2D backbones, and the mae2d_*
ViTs, run without their temporal attention, as in MAE pretraining). An encoder mixing frames (tubelets, 3D
convolutions, the clip-mean residual) would let frame K+1 leak into the context and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, init_weights_vit_timm
from torch import nn

from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.zip_dataset import ClipDataset
from whatnext.models import build_encoder
from whatnext.models.vit_base import MaskableViT
from whatnext.ssl.objective import Setting, SSLMethod
from whatnext.ssl.probe import mean_over_clips

PER_FRAME_FAMILIES = ("conv2d", "timm2d", "mae2d")
PROBE_CLIPS = 256


def frame_representations(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Clip [B, T, C, H, W] -> per-frame representations [B, T, N, D], no frame seeing another.

    The mae2d ViTs run their per-frame trunk only (their temporal attention, zero at initialisation and
    trained by finetuning, is skipped as in MAE pretraining); conv2d and timm 2D encoders are per frame.
    """
    if isinstance(encoder, MaskableViT):
        return encoder.from_sequences(encoder.encode_sequences(x))
    return encoder(x)


def check_per_frame(encoder: nn.Module, name: str) -> None:
    """``ValueError`` unless ``encoder`` represents each frame on its own."""
    family = getattr(encoder, "family", None)
    if family not in PER_FRAME_FAMILIES or (isinstance(encoder, MaskableViT) and encoder.steps_per_sequence != 1):
        raise ValueError(f"encoder {name!r} (family {family}) mixes frames; JEPA needs a per-frame encoder "
                         f"(families {', '.join(PER_FRAME_FAMILIES)})")
    if getattr(encoder, "clip_residual", False):
        raise ValueError(f"encoder {name!r}: clip_residual subtracts the clip's mean frame, which shows the future "
                         "frames to the context; JEPA runs on raw frames")


def vc_terms(embeddings: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg's variance and covariance terms of ``embeddings`` [M, P] (M samples):
    std term = mean over dimensions of relu(1 - sqrt(var + eps)); cov term = sum of squared off-diagonal
    covariances / P."""
    centred = embeddings - embeddings.mean(0)
    var = centred.var(0)
    std_term = F.relu(1.0 - torch.sqrt(var + eps)).mean()
    cov = centred.T @ centred / max(len(embeddings) - 1, 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return std_term, off_diagonal.pow(2).sum() / embeddings.shape[1]


class RolloutPredictor(nn.Module):
    """Past K frame representations [B, K, N, D] -> the next frame's [B, N, D].

    The K representations of each token are concatenated and embedded to ``dim``, learned token positions are
    added, timm Blocks attend across the N tokens, and the output is a residual on the last frame given
    (its projection starts at zero, so an untrained predictor predicts "no change").
    """

    def __init__(self, *, rep_dim: int, context: int, num_tokens: int, dim: int, depth: int, num_heads: int):
        super().__init__()
        self.context = context
        self.embed = nn.Linear(context * rep_dim, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.blocks = nn.Sequential(*(Block(dim, num_heads, qkv_bias=True) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.out = nn.Linear(dim, rep_dim)
        trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_weights_vit_timm)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, past: torch.Tensor) -> torch.Tensor:
        b, k, n, d = past.shape
        if k != self.context:
            raise ValueError(f"predictor takes {self.context} frames of context, got {k}")
        tokens = self.embed(past.transpose(1, 2).reshape(b, n, k * d)) + self.pos_embed
        return past[:, -1] + self.out(self.norm(self.blocks(tokens)))


def projector(rep_dim: int, dim: int) -> nn.Sequential:
    """The MLP the VC terms see: [..., D] -> [..., P]."""
    return nn.Sequential(nn.Linear(rep_dim, dim), nn.GELU(), nn.Linear(dim, dim))


@dataclass
class JEPAOutput:
    """loss = prediction + std_coeff * std + cov_coeff * cov (scalars); predictions, targets [B, S, N, D];
    representations [B, T, N, D]."""

    loss: torch.Tensor
    prediction: torch.Tensor
    std: torch.Tensor
    cov: torch.Tensor
    predictions: torch.Tensor
    targets: torch.Tensor
    representations: torch.Tensor


class VideoJEPA(nn.Module):
    """encoder + predictor + projector; clip [B, T, C, H, W] -> :class:`JEPAOutput`."""

    def __init__(self, encoder: nn.Module, predictor: RolloutPredictor, projector: nn.Module, *, steps: int,
                 std_coeff: float, cov_coeff: float):
        super().__init__()
        self.encoder, self.predictor, self.projector = encoder, predictor, projector
        self.context, self.steps = predictor.context, steps
        self.std_coeff, self.cov_coeff = std_coeff, cov_coeff

    def rollout(self, z: torch.Tensor) -> torch.Tensor:
        """Representations [B, T, N, D] -> predictions [B, S, N, D] of frames K .. K+S-1 from frames 0 .. K-1
        only: step s predicts from the last K of (given frames, predictions of steps < s)."""
        frames = list(z[:, : self.context].unbind(1))
        predictions = []
        for _ in range(self.steps):
            predicted = self.predictor(torch.stack(frames[-self.context :], 1))
            predictions.append(predicted)
            frames.append(predicted)
        return torch.stack(predictions, 1)

    def forward(self, x: torch.Tensor) -> JEPAOutput:
        z = frame_representations(self.encoder, x)
        if z.shape[1] < self.context + self.steps:
            raise ValueError(f"JEPA with context {self.context} and {self.steps} steps needs "
                             f"{self.context + self.steps} frames, the clip has {z.shape[1]}")
        predictions = self.rollout(z)
        targets = z[:, self.context : self.context + self.steps]
        prediction = F.mse_loss(predictions, targets)
        std, cov = vc_terms(self.projector(z.mean(2).flatten(0, 1)))
        loss = prediction + self.std_coeff * std + self.cov_coeff * cov
        return JEPAOutput(loss, prediction, std, cov, predictions, targets, z)


SETTINGS = (
    Setting("context", click.IntRange(min=1), 2, "JEPA: frames of context K the predictor sees."),
    Setting("steps", click.IntRange(min=1), 2, "JEPA: frames predicted autoregressively after the context (K + steps <= 4)."),
    Setting("std_coeff", click.FloatRange(min=0), 10.0, "JEPA: weight of the VC variance term (the seed's best: 10)."),
    Setting("cov_coeff", click.FloatRange(min=0), 100.0, "JEPA: weight of the VC covariance term (the seed's best: 100)."),
    Setting("predictor_dim", click.IntRange(min=8), 64, "JEPA: width of the predictor's Blocks."),
    Setting("predictor_depth", click.IntRange(min=1), 2, "JEPA: Blocks of the predictor."),
    Setting("predictor_heads", click.IntRange(min=1), 2, "JEPA: attention heads of the predictor's Blocks."),
    Setting("projector_dim", click.IntRange(min=8), 256, "JEPA: output width P of the projector the VC terms see."),
)
DEFAULTS = {s.name: s.default for s in SETTINGS}


@torch.no_grad()
def _token_grid(encoder: nn.Module, model_config: dict) -> tuple[int, int]:
    """(N, D) of ``encoder``'s per-frame representation, from one blank clip in eval mode (statistics of
    batch norms untouched)."""
    size, frames = model_config.get("img_size", 224), model_config.get("num_frames", 4)
    was_training = encoder.training
    encoder.eval()
    z = frame_representations(encoder, torch.zeros(1, frames, 3, size, size))
    encoder.train(was_training)
    return z.shape[2], z.shape[3]


def build_jepa(model_config: dict) -> VideoJEPA:
    """A video JEPA around ``build_encoder(model_config)``, with a fresh predictor and projector;
    ``model_config["ssl"]`` overrides :data:`DEFAULTS`."""
    settings = model_config.get("ssl", {})
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"model_config['ssl'] has unknown JEPA keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    s = DEFAULTS | settings
    frames = model_config.get("num_frames", 4)
    if s["context"] + s["steps"] > frames:
        raise ValueError(f"JEPA context {s['context']} + steps {s['steps']} exceeds the {frames} frames of a clip")
    encoder = build_encoder(model_config)
    check_per_frame(encoder, model_config["encoder"])
    num_tokens, rep_dim = _token_grid(encoder, model_config)
    predictor = RolloutPredictor(rep_dim=rep_dim, context=s["context"], num_tokens=num_tokens, dim=s["predictor_dim"],
                                 depth=s["predictor_depth"], num_heads=s["predictor_heads"])
    return VideoJEPA(encoder, predictor, projector(rep_dim, s["projector_dim"]), steps=s["steps"],
                     std_coeff=s["std_coeff"], cov_coeff=s["cov_coeff"])


def prediction_probe(model: VideoJEPA, clips: ClipDataset, normaliser: ClipNormaliser, count: int = PROBE_CLIPS,
                     batch_size: int = 64) -> float:
    """Mean rollout prediction MSE of ``model`` (eval mode) over the first ``count`` clips of ``clips``,
    whole frames at the model's size, unaugmented."""
    return mean_over_clips(model, clips, normaliser, lambda x: model(x).prediction, count, batch_size, "prediction")


METHOD = SSLMethod(
    name="jepa",
    build=build_jepa,
    loss=lambda model, clips: model(clips).loss,
    probe=prediction_probe,
    settings=SETTINGS,
    reset=("predictor", "projector"),
)
