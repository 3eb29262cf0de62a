"""timm 2D image backbones, from scratch, applied to each frame: [B, T, C, H, W] -> tokens [B, T, N, D].

N is the number of cells of the backbone's last feature map (e.g. 7x7 = 49 at 224 px), D its
channel count. Accepted input sizes (checked with timm 1.0.31, recorded in ``TIMM_BACKBONES``):
EfficientFormer (v1) L1/L3/L7 only at 224 px (their last-stage attention biases are fixed to a
7x7 grid); EfficientFormerV2, NextViT and MaxViT at any multiple of 32 px from 32 px up.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from torch import nn

from whatnext.models.registry import ENCODERS


@dataclass(frozen=True)
class TimmBackbone:
    """A timm model name and the input sizes it accepts."""

    timm_name: str
    fixed_size: int | None = None  # the only accepted size, else any multiple of 32
    takes_img_size: bool = True  # whether timm.create_model accepts ``img_size``

    def check_size(self, name: str, img_size: int) -> None:
        if self.fixed_size is not None and img_size != self.fixed_size:
            raise ValueError(f"encoder {name} accepts only img_size {self.fixed_size}, got {img_size}")
        if img_size < 32 or img_size % 32:
            raise ValueError(f"encoder {name} needs img_size a multiple of 32 (>= 32), got {img_size}")


TIMM_BACKBONES = {
    "efficientformer_l1": TimmBackbone("efficientformer_l1", fixed_size=224),
    "efficientformer_l3": TimmBackbone("efficientformer_l3", fixed_size=224),
    "efficientformer_l7": TimmBackbone("efficientformer_l7", fixed_size=224),
    "efficientformerv2_s0": TimmBackbone("efficientformerv2_s0"),
    "efficientformerv2_s2": TimmBackbone("efficientformerv2_s2"),
    "efficientformerv2_l": TimmBackbone("efficientformerv2_l"),
    "nextvit_small": TimmBackbone("nextvit_small", takes_img_size=False),
    "nextvit_base": TimmBackbone("nextvit_base", takes_img_size=False),
    "maxvit_pico": TimmBackbone("maxvit_pico_rw_256"),
    "maxvit_tiny": TimmBackbone("maxvit_tiny_tf_224"),
    "resnet50": TimmBackbone("resnet50", takes_img_size=False),  # the EPIC brief's backbone (D = 2048)
}


class TimmFrameEncoder(nn.Module):
    """A timm backbone (``pretrained=False``) run on every frame; [B, T, C, H, W] -> [B, T, N, D]."""

    def __init__(self, timm_name: str, *, num_frames: int, **timm_kwargs):
        super().__init__()
        self.backbone = timm.create_model(timm_name, pretrained=False, num_classes=0, **timm_kwargs)
        self.embed_dim = self.backbone.num_features
        self.num_steps = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        features = self.backbone.forward_features(x.flatten(0, 1))
        if features.ndim == 4:  # [B*T, D, h, w] feature map -> [B*T, h*w, D]
            features = features.flatten(2).transpose(1, 2)
        return features.reshape(b, t, *features.shape[1:])


def _register(name: str, spec: TimmBackbone) -> None:
    @ENCODERS.register(name)
    def build(img_size: int, num_frames: int, drop_path_rate: float = 0.0) -> TimmFrameEncoder:
        spec.check_size(name, img_size)
        size_kwargs = {"img_size": img_size} if spec.takes_img_size and spec.fixed_size is None else {}
        encoder = TimmFrameEncoder(spec.timm_name, num_frames=num_frames, drop_path_rate=drop_path_rate, **size_kwargs)
        encoder.family = "timm2d"
        return encoder

    build.__doc__ = f"timm {spec.timm_name} from scratch, per frame."


for _name, _spec in TIMM_BACKBONES.items():
    _register(_name, _spec)
