"""Temporal heads: encoder tokens [B, T', N, D] -> logits [B, num_classes].

Each head is a *pooler* (tokens -> one vector [B, out_dim]) followed by dropout and a linear
classifier (:class:`PooledHead`). Poolers over all tokens (``attn``, ``perceiver``) add a learned
per-step embedding so token order in time is visible; poolers over per-step vectors (``lstm``,
``lstm2``: the EPIC brief's 2-layer BiLSTM averaged over time, ``relational``) first average each step's N tokens to [B, T', D]; ``hybrid`` concatenates the
attentive probe and the BiLSTM summaries.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from timm.layers import AttentionPoolLatent, trunc_normal_
from timm.models.vision_transformer import Block

from whatnext.models.registry import HEADS


def default_num_heads(dim: int) -> int:
    """The largest head count <= 8 dividing ``dim``."""
    return next(h for h in range(8, 0, -1) if dim % h == 0)


class TimeEmbedding(nn.Module):
    """Adds a learned embedding per time step and flattens: [B, T', N, D] -> [B, T'*N, D]."""

    def __init__(self, dim: int, num_steps: int):
        super().__init__()
        self.embed = nn.Parameter(trunc_normal_(torch.zeros(num_steps, 1, dim), std=0.02))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return (tokens + self.embed).flatten(1, 2)


class AttentivePooler(nn.Module):
    """Attentive probe: one learned query cross-attends over every token (timm AttentionPoolLatent) -> [B, D]."""

    def __init__(self, dim: int, num_steps: int, num_heads: int | None = None):
        super().__init__()
        self.time = TimeEmbedding(dim, num_steps)
        self.pool = AttentionPoolLatent(dim, num_heads=num_heads or default_num_heads(dim), norm_layer=nn.LayerNorm)
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.pool(self.time(tokens))


class PerceiverPooler(nn.Module):
    """Perceiver: ``num_latents`` learned latents cross-attend over every token, then ``depth``
    self-attention Blocks over the latents, averaged -> [B, D]."""

    def __init__(self, dim: int, num_steps: int, num_latents: int = 8, depth: int = 2, num_heads: int | None = None):
        super().__init__()
        heads = num_heads or default_num_heads(dim)
        self.time = TimeEmbedding(dim, num_steps)
        self.cross = AttentionPoolLatent(dim, num_heads=heads, latent_len=num_latents, pool_type="",
                                         norm_layer=nn.LayerNorm)
        self.blocks = nn.Sequential(*(Block(dim, heads, qkv_bias=True) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.cross(self.time(tokens)))).mean(1)


class BiLSTMPooler(nn.Module):
    """Bidirectional LSTM over per-step vectors [B, T', D]; final forward and backward states -> [B, 2*hidden]."""

    def __init__(self, dim: int, num_steps: int, hidden: int | None = None, layers: int = 1):
        super().__init__()
        hidden = hidden or dim // 2
        self.norm = nn.LayerNorm(dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.out_dim = 2 * hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(self.norm(tokens.mean(2)))
        return torch.cat([h_n[-2], h_n[-1]], dim=1)


class DeepBiLSTMPooler(nn.Module):
    """The EPIC brief's temporal model: a 2-layer bidirectional LSTM (dropout 0.3 between layers) over
    per-step vectors [B, T', D], its outputs [B, T', 2*hidden] averaged over time -> [B, 2*hidden]."""

    def __init__(self, dim: int, num_steps: int, hidden: int | None = None, layers: int = 2, lstm_dropout: float = 0.3):
        super().__init__()
        hidden = hidden or dim // 2
        self.norm = nn.LayerNorm(dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=lstm_dropout if layers > 1 else 0.0)
        self.out_dim = 2 * hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.lstm(self.norm(tokens.mean(2)))[0].mean(1)


class RelationalPooler(nn.Module):
    """Relation network over ordered step pairs i < j: sum_ij g([f_i, f_j]) -> [B, hidden]."""

    def __init__(self, dim: int, num_steps: int, hidden: int | None = None):
        super().__init__()
        if num_steps < 2:
            raise ValueError(f"the relational head needs at least 2 time steps, the encoder gives {num_steps}")
        hidden = hidden or dim
        self.pairs = list(itertools.combinations(range(num_steps), 2))
        self.norm = nn.LayerNorm(dim)
        self.relation = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.out_dim = hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = self.norm(tokens.mean(2))
        first, second = zip(*self.pairs)
        pairs = torch.cat([steps[:, list(first)], steps[:, list(second)]], dim=-1)
        return self.relation(pairs).sum(1)


class HybridPooler(nn.Module):
    """Concatenation of the attentive probe [B, D] and the BiLSTM summary [B, 2*hidden]."""

    def __init__(self, dim: int, num_steps: int, num_heads: int | None = None, hidden: int | None = None):
        super().__init__()
        self.attn = AttentivePooler(dim, num_steps, num_heads=num_heads)
        self.lstm = BiLSTMPooler(dim, num_steps, hidden=hidden)
        self.out_dim = self.attn.out_dim + self.lstm.out_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.attn(tokens), self.lstm(tokens)], dim=1)


class PooledHead(nn.Module):
    """pooler -> dropout -> linear: tokens [B, T', N, D] -> logits [B, num_classes]."""

    def __init__(self, pooler: nn.Module, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.pooler = pooler
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(pooler.out_dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pooler(tokens)))


def _register(name: str, pooler_cls: type[nn.Module]) -> None:
    @HEADS.register(name)
    def build(dim: int, num_steps: int, num_classes: int, dropout: float = 0.0, **pooler_kwargs) -> PooledHead:
        return PooledHead(pooler_cls(dim, num_steps, **pooler_kwargs), num_classes, dropout)

    build.__doc__ = f"{pooler_cls.__name__} + linear classifier."


for _name, _pooler in [("attn", AttentivePooler), ("perceiver", PerceiverPooler), ("lstm", BiLSTMPooler),
                       ("hybrid", HybridPooler), ("relational", RelationalPooler), ("lstm2", DeepBiLSTMPooler)]:
    _register(_name, _pooler)
