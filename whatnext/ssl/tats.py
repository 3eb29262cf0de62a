"""Trajectory-aware adaptive token selection (TATS, seed ``tats-adaptive-token-selection-paper.txt``): a learned
masking policy for the masked autoencoders, trained with PPO on the reconstruction error.

Pieces (shapes: token grid [B, T', N] as in :mod:`whatnext.models.vit_base`; the encoder's sequences
[S, L], L = ``steps_per_sequence`` * N: a frame for MAE-2D, the clip for VideoMAE):

- :class:`TrajectoryAttention`: trajectory attention (Patrick et al. 2021) over the token grid, in its exact
  form (each query attends over the patches of every frame, giving one trajectory token per frame; the
  trajectory is then pooled over time by 1-D attention from the query's own frame). The paper uses the
  linear-cost Orthoformer approximation; at the grids here (T'N <= 4 x 196) the exact form costs little.
- :class:`TokenSampler`: one trajectory block over the MAE's embedded tokens (detached) -> actor logits
  [B, T', N] (Linear on the normalised block output) and a value head (two linears with a ReLU on the
  mean input token) -> [B]: the expected reward of the clip.
- :func:`gumbel_top_k`: the visible tokens of each sequence, ``keep`` of them drawn without replacement from
  softmax(logits): Gumbel-top-k is exactly sequential sampling without replacement, so the count is exact.
- :func:`ppo_loss`: the paper's sampling loss on recorded episodes: clipped importance-ratio objective,
  value loss and entropy bonus.
- :class:`AdaptiveMasking`: the training recipe. The family's random masking up to a warm-up of
  ``warmup_epochs``; then alternating phases: for ``record_steps`` MAE steps the sampler is frozen
  (``requires_grad`` False, so the MAE's optimiser never holds it) and draws the masks, and each step is
  recorded as an episode (tokens, mask, log-probabilities, value, per-token reconstruction error); then the
  sampler trains ``ppo_epochs`` full-batch PPO steps on those episodes with its own AdamW while the MAE is
  frozen (the episodes hold detached tensors, so nothing reaches it), and the buffer is emptied. Step
  counter, buffer and the sampler's optimiser state are the module's extra state, so they travel in the
  trainer's resume state with the weights and a resumed run is exact.

The log-probabilities (the approximation, stated): the reward is per token (the reconstruction error of each
masked token that was reconstructed), as in the paper and AdaMAE, so the PPO action is per token and its
probability is p_i = softmax(logits of its sequence)_i, the probability that one draw from the categorical
picks token i. The visible set is ``keep`` draws without replacement from that categorical; the probability
that token i ends up in the set has no closed form (a sum over orders), and it increases with p_i when the
other logits are fixed, so the ratio p_i / p_i_old moves in the direction of the inclusion-probability ratio
but is not equal to it. The ordered draw's own probability (Plackett-Luce) is exact but belongs to the set as
a whole, which would credit one scalar reward to all ``keep`` picks; the per-token reward of the paper has
no such scalar. The entropy bonus is the entropy of that categorical, per sequence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from timm.layers import Mlp, trunc_normal_
from torch import nn

from whatnext.runtime.distributed import current_ranks


class TrajectoryAttention(nn.Module):
    """Trajectory attention: tokens [B, T, N, D] -> [B, T, N, D] (``num_heads`` heads of D / num_heads).

    For the query of token (t, n): per frame u, attention over that frame's N patches gives the trajectory
    token y[t, n, u] (where the token is in frame u, softly); new query/key/value projections of those
    trajectory tokens, the query taken at the reference frame u = t, then attend over u (1-D, over time).
    Memory is O(B T^2 N (N + D)).
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"trajectory attention width {dim} does not split into {num_heads} heads")
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.traj_q = nn.Linear(dim, dim)
        self.traj_kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, patches, dim = x.shape
        heads, width = self.num_heads, dim // self.num_heads
        q, k, v = self.qkv(x).reshape(batch, steps, patches, 3, heads, width).permute(3, 0, 4, 1, 2, 5)  # [B, h, T, N, d]
        spatial = (torch.einsum("bhtnd,bhumd->bhtnum", q, k) * self.scale).softmax(dim=-1)  # over frame u's patches m
        traj = torch.einsum("bhtnum,bhumd->bhtnud", spatial, v)  # [B, h, T, N, U, d]
        traj = traj.permute(0, 2, 3, 4, 1, 5).reshape(batch, steps, patches, steps, dim)  # [B, T, N, U, D]
        reference = torch.diagonal(traj, dim1=1, dim2=3).permute(0, 3, 1, 2)  # u = t: [B, T, N, D]
        q2 = self.traj_q(reference).reshape(batch, steps, patches, heads, width)
        k2, v2 = self.traj_kv(traj).reshape(batch, steps, patches, steps, 2, heads, width).unbind(4)  # [B, T, N, U, h, d]
        temporal = (torch.einsum("btnhd,btnuhd->btnhu", q2, k2) * self.scale).softmax(dim=-1)
        out = torch.einsum("btnhu,btnuhd->btnhd", temporal, v2).reshape(batch, steps, patches, dim)
        return self.proj(out)


class TrajectoryBlock(nn.Module):
    """Pre-norm residual block: x + TA(LN(x)), then x + MLP(LN(x)) (timm ``Mlp``, ratio 4); [B, T, N, D] -> same."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = TrajectoryAttention(dim, num_heads)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenSampler(nn.Module):
    """The TATS network: embedded tokens [B, T', N, D] -> (actor logits [B, T', N], value [B]).

    One trajectory block (the paper's ablation: 1 block 81.46, 4 blocks 81.75 top-1 on UCF101 at ratio 0.95)
    on the tokens plus a learned per-step embedding (MAE-2D's position embedding does not say which frame a
    token is in); the value head reads the mean input token, as in the paper.
    """

    def __init__(self, dim: int, num_heads: int, num_steps: int):
        super().__init__()
        self.step_embed = nn.Parameter(torch.zeros(1, num_steps, 1, dim))
        self.trajectory = TrajectoryBlock(dim, num_heads)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.actor = nn.Linear(dim, 1)
        self.critic = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        trunc_normal_(self.step_embed, std=0.02)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.actor(self.norm(self.trajectory(tokens + self.step_embed))).squeeze(-1)
        return logits, self.critic(tokens.mean(dim=(1, 2))).squeeze(-1)


def gumbel_top_k(logits: torch.Tensor, keep: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool [S, L], True at ``keep`` tokens per row drawn without replacement from softmax(logits [S, L]).

    The Gumbel noise is drawn on the CPU from ``generator`` (torch's global RNG if None), as the random
    maskings draw theirs, so a seed fixes the draw whatever the device.
    """
    if not 0 < keep < logits.shape[1]:
        raise ValueError(f"cannot keep {keep} of {logits.shape[1]} tokens per sequence")
    uniform = torch.rand(logits.shape, generator=generator).clamp_(min=torch.finfo(torch.float32).tiny)
    gumbel = -torch.log(-torch.log(uniform)).to(logits.device)
    chosen = (logits.detach().float() + gumbel).topk(keep, dim=1).indices
    return torch.zeros(logits.shape, dtype=torch.bool, device=logits.device).scatter_(1, chosen, True)


@dataclass
class Episode:
    """One recorded MAE step: tokens [B, T', N, D] (detached sampler input), mask and rewarded bool [B, T', N]
    (masked; masked and reconstructed), reward [B, T', N] (reconstruction error of the rewarded tokens, 0
    elsewhere), old_log_prob [B, T', N] (per-token log p_i when drawn), old_value [B]."""

    tokens: torch.Tensor
    mask: torch.Tensor
    rewarded: torch.Tensor
    reward: torch.Tensor
    old_log_prob: torch.Tensor
    old_value: torch.Tensor


@dataclass(frozen=True)
class PPOSettings:
    """PPO on the sampler: clip threshold, the coefficients of the policy loss, value loss and entropy bonus
    (the paper's 1e-4 each), full-batch update steps per phase, and the sampler's AdamW learning rate."""

    clip: float
    policy_coeff: float
    value_coeff: float
    entropy_coeff: float
    epochs: int
    lr: float


def sequence_log_probs(logits: torch.Tensor, steps_per_sequence: int) -> torch.Tensor:
    """log softmax of logits [B, T', N] over each sequence of ``steps_per_sequence`` steps -> [B, T', N]."""
    batch, steps, patches = logits.shape
    return logits.reshape(-1, steps_per_sequence * patches).log_softmax(dim=1).reshape(batch, steps, patches)


def ppo_loss(logits: torch.Tensor, value: torch.Tensor, episode: Episode, settings: PPOSettings,
             steps_per_sequence: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's sampling loss of the current sampler outputs (logits [B, T', N], value [B]) on an episode.

    Over the rewarded tokens i: ratio r_i = p_i / p_i_old, advantage A_i = reward_i - old_value (of its clip);
    loss = -c_p mean min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i) + c_v mean (value - reward_i)^2
    - c_e H, H the mean entropy of the per-sequence categoricals. Returns (loss, the three terms as floats).
    """
    log_prob = sequence_log_probs(logits, steps_per_sequence)
    chosen = episode.rewarded
    ratio = (log_prob - episode.old_log_prob).exp()[chosen]
    advantage = (episode.reward - episode.old_value[:, None, None])[chosen]
    clipped = ratio.clamp(1.0 - settings.clip, 1.0 + settings.clip)
    policy = -torch.minimum(ratio * advantage, clipped * advantage).mean()
    value_loss = (value[:, None, None] - episode.reward)[chosen].pow(2).mean()
    entropy = -(log_prob.exp() * log_prob).reshape(-1, steps_per_sequence * logits.shape[2]).sum(1).mean()
    loss = settings.policy_coeff * policy + settings.value_coeff * value_loss - settings.entropy_coeff * entropy
    return loss, {"policy": policy.item(), "value": value_loss.item(), "entropy": entropy.item()}


class AdaptiveMasking(nn.Module):
    """The TATS masking of one masked autoencoder: sampler, its optimiser, the episode buffer and the phases.

    Args:
        sampler: the :class:`TokenSampler`.
        steps_per_sequence: the encoder's (1 for MAE-2D: each frame draws its own visible tokens; T' for
            VideoMAE: the clip's visible tokens anywhere in space-time).
        warmup_epochs: the family's random masking until this many epochs of steps are done (fractions
            allowed; :meth:`schedule` converts them to steps).
        record_steps: MAE steps recorded per phase before the sampler trains on them (the paper's 1).
        ppo: :class:`PPOSettings`.
    """

    def __init__(self, sampler: TokenSampler, *, steps_per_sequence: int, warmup_epochs: float, record_steps: int,
                 ppo: PPOSettings):
        super().__init__()
        if current_ranks().distributed:
            raise ValueError("masking tats trains its sampler in one process; run the SSL CLI without launch --nproc")
        if warmup_epochs < 0 or record_steps < 1 or ppo.epochs < 1 or not 0 < ppo.clip < 1:
            raise ValueError(f"TATS settings out of range: warmup_epochs {warmup_epochs} (>= 0), record_steps "
                             f"{record_steps} (>= 1), ppo epochs {ppo.epochs} (>= 1), clip {ppo.clip} (in (0, 1))")
        self.sampler = sampler.requires_grad_(False)
        self.steps_per_sequence, self.warmup_epochs, self.record_steps, self.ppo = (
            steps_per_sequence, warmup_epochs, record_steps, ppo)
        self.optimizer = torch.optim.AdamW(sampler.parameters(), lr=ppo.lr, betas=(0.9, 0.95), weight_decay=0.0)
        self.warmup_steps: int | None = None
        self.steps = 0  # MAE training steps taken
        self.buffer: list[Episode] = []
        self.last_update: dict[str, float] = {}

    def schedule(self, steps_per_epoch: int) -> None:
        """Fix the warm-up in steps (called once the trainer knows its epoch length)."""
        self.warmup_steps = round(self.warmup_epochs * steps_per_epoch)

    @property
    def active(self) -> bool:
        """True once the warm-up is over: the next MAE step's mask comes from the sampler."""
        if self.warmup_steps is None:
            raise RuntimeError("AdaptiveMasking.schedule(steps_per_epoch) must be called before training")
        return self.steps >= self.warmup_steps

    @torch.no_grad()
    def draw(self, tokens: torch.Tensor, num_masked: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, Episode]:
        """Sampler-drawn mask [B, T', N] (True = masked, exactly ``num_masked`` per sequence) for embedded tokens
        [B, T', N, D], and the episode it starts (its reward and rewarded tokens, zero here, are the caller's to
        fill). fp32, outside any autocast, as :meth:`update` recomputes the log-probabilities."""
        tokens = tokens.detach().float()
        with torch.autocast(tokens.device.type, enabled=False):
            logits, value = self.sampler(tokens)
        batch, steps, patches = logits.shape
        length = self.steps_per_sequence * patches
        visible = gumbel_top_k(logits.reshape(-1, length), length - num_masked, generator).reshape(batch, steps, patches)
        mask = ~visible
        episode = Episode(tokens, mask, rewarded=torch.zeros_like(mask), reward=torch.zeros_like(logits),
                          old_log_prob=sequence_log_probs(logits, self.steps_per_sequence), old_value=value)
        return mask, episode

    def record(self, episode: Episode | None) -> None:
        """End one MAE training step: count it; store its episode (a sampler-drawn mask, its reward filled in),
        and once ``record_steps`` episodes are in, train the sampler on them (:meth:`update`) and empty the buffer."""
        self.steps += 1
        if episode is None:
            return
        self.buffer.append(episode)
        if len(self.buffer) >= self.record_steps:
            self.update()
            self.buffer = []

    def update(self) -> dict[str, float]:
        """Phase 2: ``ppo.epochs`` full-batch AdamW steps of the sampler on the buffer (fp32, outside any
        autocast); returns the last step's loss terms."""
        device = next(self.sampler.parameters()).device
        episode = Episode(*(torch.cat([getattr(e, name).to(device) for e in self.buffer])
                            for name in Episode.__dataclass_fields__))
        self.sampler.requires_grad_(True)
        try:
            with torch.enable_grad(), torch.autocast(device.type, enabled=False):
                for _ in range(self.ppo.epochs):
                    logits, value = self.sampler(episode.tokens)
                    loss, terms = ppo_loss(logits, value, episode, self.ppo, self.steps_per_sequence)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            self.sampler.requires_grad_(False)
        self.last_update = terms
        return terms

    def get_extra_state(self) -> dict:
        return {"steps": self.steps, "optimizer": self.optimizer.state_dict(),
                "buffer": [asdict(episode) for episode in self.buffer]}

    def set_extra_state(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer = [Episode(**episode) for episode in state["buffer"]]


DEFAULTS = {  # the ``tats_*`` settings (CLI flags --tats-*, ``model_config["ssl"]`` keys) and their defaults
    "tats_warmup_epochs": 10.0,  # the paper's (of 400 SSL epochs)
    "tats_record_steps": 1,  # the paper's
    "tats_ppo_epochs": 4,  # not stated in the paper; PPO's usual few passes, so that the clip can act
    "tats_lr": 1.5e-6,  # the paper's sampler learning rate
    "tats_clip": 0.2,  # not stated in the paper; PPO's usual threshold
    "tats_policy_coeff": 1e-4,  # the paper's three coefficients
    "tats_value_coeff": 1e-4,
    "tats_entropy_coeff": 1e-4,
}


def build_adaptive_masking(encoder, ssl: dict) -> AdaptiveMasking:
    """TATS for a masked-pretraining ``encoder`` (:class:`~whatnext.models.vit_base.MaskableViT`): sampler as
    wide as the encoder, with its head count; settings from the ``tats_*`` keys of ``ssl`` (:data:`DEFAULTS`)."""
    value = {name: ssl.get(name, default) for name, default in DEFAULTS.items()}
    sampler = TokenSampler(encoder.embed_dim, encoder.blocks[0].attn.num_heads, encoder.num_steps)
    ppo = PPOSettings(clip=value["tats_clip"], policy_coeff=value["tats_policy_coeff"],
                      value_coeff=value["tats_value_coeff"], entropy_coeff=value["tats_entropy_coeff"],
                      epochs=value["tats_ppo_epochs"], lr=value["tats_lr"])
    return AdaptiveMasking(sampler, steps_per_sequence=encoder.steps_per_sequence,
                           warmup_epochs=value["tats_warmup_epochs"], record_steps=value["tats_record_steps"], ppo=ppo)
