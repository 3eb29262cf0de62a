"""Numeric precision and the GPU fast paths shared by the training CLIs and ``cache_probs``.

``--precision auto|bf16|fp16|fp32`` resolves against the device (:func:`resolve_precision`):
``auto`` is bf16 autocast on a CUDA card that supports it, fp16 autocast with a gradient scaler on
older cards, and fp32 on the CPU. An :class:`Acceleration` applies the choice and the fast paths
that only pay on CUDA, and leaves the CPU path exactly as it was (no autocast, no scaler, no memory
format change), so ``--precision fp32`` trains bit for bit as before:

- TF32 matmuls and convolutions (:func:`enable_tf32`), process-wide;
- ``channels_last`` (``channels_last_3d``) weights for models with 2D (3D) convolutions
  (:func:`conv_memory_format`); cuDNN then runs the convolutions in NHWC;
- fused AdamW (:meth:`Acceleration.optimizer_kwargs`);
- pinned host memory for ``non_blocking`` copies, and loader workers that persist and prefetch
  (:meth:`Acceleration.loader_kwargs`);
- ``--compile``: regional ``torch.compile`` in place (:func:`compile_regions`), so parameter names and
  checkpoints are unchanged.

The fp16 gradient scaler's state (scale and growth tracker) belongs in a resume state:
:meth:`Acceleration.state_dict` / :meth:`Acceleration.load_state_dict`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import click
import torch
from torch import nn

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PREFETCH_FACTOR = 4  # batches each loader worker keeps ready


def resolve_precision(name: str, device: torch.device) -> str:
    """``bf16``, ``fp16`` or ``fp32`` for ``--precision name`` on ``device`` (``auto`` decides by the device)."""
    if name not in PRECISIONS:
        raise ValueError(f"precision {name!r} is not one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def enable_tf32() -> None:
    """Let fp32 matmuls and cuDNN convolutions use TF32 tensor cores (process-wide; CUDA only)."""
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True


def conv_memory_format(model: nn.Module) -> torch.memory_format | None:
    """``channels_last`` for a model with 2D convolutions, ``channels_last_3d`` with 3D ones, else None.

    The ViTs embed patches with a ``Linear`` and get None; a model holding both kinds gets the kind
    with more convolution weights.
    """
    conv2d = sum(module.weight.numel() for module in model.modules() if isinstance(module, nn.Conv2d))
    conv3d = sum(module.weight.numel() for module in model.modules() if isinstance(module, nn.Conv3d))
    if conv2d == conv3d == 0:
        return None
    return torch.channels_last if conv2d >= conv3d else torch.channels_last_3d


def compile_regions(model: nn.Module, backend: str = "inductor") -> list[str]:
    """Compile parts of ``model`` in place (``nn.Module.compile``); returns the compiled modules' names.

    The regions: every block of a transformer trunk (children of a module named ``blocks``), which the
    visible-token encoders call from methods other than ``forward``; else every module named
    ``encoder`` (conv and timm encoders, called through ``__call__``); else the model itself. In-place
    compilation keeps the parameter names, so checkpoints and resume states do not change, and compiling
    one repeated block keeps the first step's compile time short.
    """
    named = list(model.named_modules())
    regions = [(f"{name}.{child_name}", child) for name, module in named if name.rsplit(".", 1)[-1] == "blocks"
               for child_name, child in module.named_children()]
    regions = regions or [(name, module) for name, module in named if name.rsplit(".", 1)[-1] == "encoder"] or [("", model)]
    for _, module in regions:
        module.compile(backend=backend)
    return [name for name, _ in regions]


@dataclass
class Acceleration:
    """The resolved precision and fast paths of one process on ``device``.

    ``precision`` is ``--precision`` (resolved on construction, see :func:`resolve_precision`);
    ``compile`` is ``--compile``.
    """

    device: torch.device
    precision: str = "auto"
    compile: bool = False
    scaler: torch.amp.GradScaler = field(init=False)

    def __post_init__(self):
        self.device = torch.device(self.device)
        self.precision = resolve_precision(self.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> str:
        """One log line: precision and the fast paths in use."""
        paths = ["tf32", "fused AdamW", "pinned memory"] if self.cuda else []
        paths += ["compile"] if self.compile else []
        scaler = " + grad scaler" if self.scaler.is_enabled() else ""
        return f"precision {self.precision}{scaler} on {self.device}" + (f" ({', '.join(paths)})" if paths else "")

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device and apply the model-side fast paths (in place; returns it)."""
        model = model.to(self.device)
        if self.cuda:
            enable_tf32()
            memory_format = conv_memory_format(model)
            if memory_format is not None:
                model = model.to(memory_format=memory_format)
        if self.compile:
            compile_regions(model)
        return model

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for the forward pass and loss: autocast to bf16 / fp16, nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def optimizer_kwargs(self) -> dict:
        """Extra ``torch.optim.AdamW`` arguments: the fused kernel on CUDA."""
        return {"fused": True} if self.cuda else {}

    def loader_kwargs(self, workers: int) -> dict:
        """Extra ``DataLoader`` arguments: pinned memory on CUDA; with workers, they persist and prefetch."""
        kwargs = {"num_workers": workers, "pin_memory": self.cuda}
        if workers > 0:
            kwargs |= {"persistent_workers": True, "prefetch_factor": PREFETCH_FACTOR}
        return kwargs

    def backward(self, loss: torch.Tensor) -> None:
        """Backward pass of one (micro-)batch's loss through the scaler: exactly ``loss.backward()`` without
        fp16; with it, the scaled loss's (gradients accumulate scaled until :meth:`step`)."""
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, parameters, clip_grad_norm: float | None = None) -> None:
        """Optional gradient-norm clipping and the optimiser step, once per step after the backward passes.

        Without fp16 the scaler is disabled and this is exactly clipping and ``optimizer.step()``; with fp16
        the accumulated gradients are unscaled once before clipping, and a step whose gradients overflowed
        is skipped (the scale then halves).
        """
        if clip_grad_norm is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        """The gradient scaler's state (empty when no scaler is in use)."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        """Restore :meth:`state_dict`; an empty state (written without a scaler) leaves a fresh scaler."""
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def precision_option(default: str = "auto"):
    """The ``--precision`` click option (training CLIs and ``cache_probs``)."""
    return click.option("--precision", type=click.Choice(PRECISIONS), default=default, show_default=True,
                        help="auto: bf16 autocast on CUDA cards with bf16, fp16 + gradient scaler on older cards, fp32 on CPU.")


def compile_option():
    """The ``--compile`` click flag."""
    return click.option("--compile", is_flag=True,
                        help="torch.compile the model's blocks in place (first steps slower; off by default).")
