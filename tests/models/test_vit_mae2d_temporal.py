"""MAE-2D ViT: the zero-initialised temporal attention is an exact identity at initialisation."""

import torch

from whatnext.models import build_encoder

CONFIG = {"encoder": "mae2d_vit_tiny", "img_size": 32, "num_frames": 4}


def _clip() -> torch.Tensor:
    return torch.randn(2, 4, 3, 32, 32)


def test_temporal_attention_is_exact_identity_at_init():
    """Same weights with and without the temporal modules give bit-identical tokens."""
    with_temporal = build_encoder(CONFIG)
    per_frame = build_encoder(CONFIG | {"encoder_kwargs": {"temporal_blocks": 0}})
    missing, unexpected = per_frame.load_state_dict(with_temporal.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("temporal.") for k in unexpected)
    x = _clip()
    assert len(with_temporal.temporal) == 2
    assert torch.equal(with_temporal(x), per_frame(x))


def test_frames_do_not_interact_at_init():
    """On raw frames (the clip residual would mix frames by design) the zero-initialised temporal
    attention keeps every frame's tokens independent of the other frames."""
    encoder = build_encoder(CONFIG)
    x = _clip()
    changed = x.clone()
    changed[:, 3] = torch.randn_like(changed[:, 3])
    assert torch.equal(encoder(x)[:, :3], encoder(changed)[:, :3])


def test_trained_temporal_attention_mixes_frames():
    """Once its output projection is non-zero, a frame's tokens depend on the other frames."""
    encoder = build_encoder(CONFIG)
    for module in encoder.temporal.values():
        torch.nn.init.normal_(module.attn.proj.weight, std=0.1)
    x = _clip()
    changed = x.clone()
    changed[:, 3] = torch.randn_like(changed[:, 3])
    assert not torch.allclose(encoder(x)[:, 0], encoder(changed)[:, 0])


def test_temporal_projection_receives_gradient_at_init():
    encoder = build_encoder(CONFIG)
    encoder(_clip()).square().mean().backward()
    grad = encoder.temporal["3"].attn.proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_clip_residual_ignores_what_every_frame_shares():
    """With the clip residual, a static background added to every frame leaves the tokens unchanged."""
    encoder = build_encoder(CONFIG | {"encoder_kwargs": {"clip_residual": True}}).eval()
    x = _clip()
    background = torch.randn_like(x[:, :1])
    torch.testing.assert_close(encoder(x + background), encoder(x), rtol=1e-4, atol=1e-4)
    raw = build_encoder(CONFIG).eval()
    assert not torch.allclose(raw(x + background), raw(x), atol=1e-2)
