"""Video JEPA: VC terms, collapse without them, autoregressive rollout, encoder checks, the cascade reset and
the CLI's exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from whatnext.models import build_encoder
from whatnext.runtime.checkpoint import load_checkpoint
from whatnext.runtime.trainer import STATE_FILE, STOP_AFTER_STEPS_ENV, TrainOptions
from whatnext.ssl.cascade import open_generation, run_generation
from whatnext.ssl.jepa import build_jepa, vc_terms
from whatnext.ssl.methods import METHODS
from whatnext.ssl.pretrain_jepa import main as jepa_main

JEPA = METHODS["jepa"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def jepa(size=16, **settings):
    return build_jepa({"encoder": "conv2d_tiny", "img_size": size, "num_frames": 4, "ssl": settings})


def moving_squares(n: int, generator: torch.Generator, size: int = 16) -> torch.Tensor:
    """Clips [n, 4, 3, size, size]: a static noise background per clip and a bright square moving at a
    constant velocity of up to 3 px a frame."""
    x = 0.3 * torch.randn(n, 1, 3, size, size, generator=generator).expand(n, 4, 3, size, size).clone()
    side = size // 4
    start = torch.randint(0, size - side - 2, (n, 2), generator=generator)
    velocity = torch.randint(-3, 4, (n, 2), generator=generator)
    for b in range(n):
        for t in range(4):
            r, c = (start[b] + t * velocity[b]).clamp(0, size - side).tolist()
            x[b, t, :, r : r + side, c : c + side] += 2.0
    return x


def test_vc_terms_of_known_embeddings():
    spread = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # std 1.63 per dim, uncorrelated
    std, cov = vc_terms(spread)
    assert std.item() == 0.0 and cov.item() == pytest.approx(0.0)
    std, cov = vc_terms(torch.ones(8, 3))  # collapsed: the std term is 1 - sqrt(eps)
    assert std.item() == pytest.approx(1 - 1e-2) and cov.item() == 0.0
    line = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])  # var 1 each, covariance 1 off the diagonal
    std, cov = vc_terms(line)
    assert std.item() == 0.0 and cov.item() == pytest.approx(2 * 1.0**2 / 2)  # two off-diagonal entries / P


def train_steps(std_coeff: float, cov_coeff: float, steps: int = 60) -> tuple[float, float]:
    """(per-dimension std of the frame representations at initialisation, after ``steps`` AdamW steps at lr
    3e-3), over 32 fixed probe clips, batch-norm statistics of the batch (train mode)."""
    torch.manual_seed(0)
    model = jepa(std_coeff=std_coeff, cov_coeff=cov_coeff)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    data, probe = torch.Generator().manual_seed(1), moving_squares(32, torch.Generator().manual_seed(9))

    def spread() -> float:
        with torch.no_grad():
            z = model(probe).representations.mean(2).flatten(0, 1)  # [clips x frames, D]
        return z.std(0).mean().item()

    before = spread()
    for _ in range(steps):
        loss = model(moving_squares(16, data)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return before, spread()


def test_without_the_vc_terms_the_representation_collapses_and_with_them_it_does_not():
    """Measured (16 px, conv2d_tiny, 60 steps): std 0.273 -> 0.014 without VC (and falling: 0.011 after 100
    steps), -> 0.085 with the seed's coefficients (std 10, cov 100)."""
    before, collapsed = train_steps(0.0, 0.0)
    same_start, regularised = train_steps(10.0, 100.0)
    assert before == same_start > 0.1
    assert collapsed < 0.08 * before
    assert regularised > 0.2 * before and regularised > 4 * collapsed


def test_rollout_feeds_the_predictor_its_own_predictions():
    torch.manual_seed(0)
    model = jepa(context=1, steps=3)
    torch.nn.init.normal_(model.predictor.out.weight, std=0.5)  # a predictor that changes its input
    z = torch.randn(2, 4, 4, 64)
    predictions = model.rollout(z)
    assert predictions.shape == (2, 3, 4, 64)
    first = model.predictor(z[:, :1])
    assert torch.allclose(predictions[:, 0], first)
    assert torch.allclose(predictions[:, 1], model.predictor(first[:, None]))
    assert torch.allclose(predictions[:, 2], model.predictor(predictions[:, 1:2]))
    future_changed = torch.cat([z[:, :1], torch.randn(2, 3, 4, 64)], 1)  # frames after the context differ
    assert torch.equal(model.rollout(future_changed), predictions)


def test_loss_targets_are_the_frames_after_the_context():
    out = jepa(context=2, steps=2)(moving_squares(4, torch.Generator().manual_seed(0)))
    assert out.predictions.shape == out.targets.shape == (4, 2, 4, 64)
    assert torch.equal(out.targets, out.representations[:, 2:4])
    assert out.loss.item() == pytest.approx((out.prediction + 10 * out.std + 100 * out.cov).item(), rel=1e-6)


@pytest.mark.parametrize("encoder, kwargs, message", [
    ("videomae_vit_tiny", {}, "mixes frames"),
    ("conv3d_tiny", {}, "mixes frames"),
    ("mae2d_vit_tiny", {"clip_residual": True}, "clip_residual"),
])
def test_encoders_that_let_the_future_into_the_context_are_refused(encoder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_jepa({"encoder": encoder, "img_size": 32, "num_frames": 4, "encoder_kwargs": kwargs})


def test_context_and_steps_beyond_the_clip_and_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="context 2 \\+ steps 3 exceeds the 4 frames"):
        jepa(steps=3)
    with pytest.raises(ValueError, match="unknown JEPA keys \\['mask_ratio'\\]"):
        jepa(mask_ratio=0.5)


def test_the_per_frame_mae2d_vit_is_a_jepa_encoder():
    model = build_jepa({"encoder": "mae2d_vit_tiny", "img_size": 32, "num_frames": 4})
    out = model(torch.randn(2, 4, 3, 32, 32))
    assert out.representations.shape == (2, 4, 16, 96) and torch.isfinite(out.loss)


TRAIN = TrainOptions(seed=3, max_epochs=1, batch_size=16, lr=1e-3, threads=1)


def test_a_generation_reloads_the_encoder_and_resets_predictor_projector_and_optimiser(tiny_data_dir, tmp_path):
    common = dict(data=tiny_data_dir, arch="conv2d_tiny", img_size=32, settings={}, splits=("val",), train=TRAIN)
    g1 = run_generation(JEPA, init_encoder=None, out=tmp_path / "g1.pt", metrics=tmp_path / "g1.json", **common)
    assert g1["generation"] == 1 and g1["probe_loss"] > 0
    cascaded = open_generation(JEPA, init_encoder=tmp_path / "g1.pt", **common)
    fresh = open_generation(JEPA, init_encoder=None, **common)
    parent = load_checkpoint(tmp_path / "g1.pt")["state_dict"]
    for key, value in cascaded.model.encoder.state_dict().items():
        assert torch.equal(value, parent[key]), key
    assert JEPA.reset == ("predictor", "projector")
    for name in JEPA.reset:
        for key, value in getattr(fresh.model, name).state_dict().items():
            assert torch.equal(getattr(cascaded.model, name).state_dict()[key], value), f"{name}.{key}"
    assert cascaded.number == 2 and cascaded.trainer.step == 0 and not cascaded.trainer.optimizer.state


def run_cli(tiny_data_dir, tmp_path, name, extra=(), env=None):
    """The JEPA CLI on the 68 val clips (2 epochs of 4 steps of 16 clips); returns (result, out, metrics)."""
    out, metrics = tmp_path / f"{name}.pt", tmp_path / f"{name}.json"
    args = ["--data", str(tiny_data_dir), "--arch", "conv2d_tiny", "--img-size", "32", "--splits", "val",
            "--out", str(out), "--metrics", str(metrics), "--epochs", "2", "--batch-size", "16", "--lr", "1e-3",
            "--warmup-epochs", "0.5", "--seed", "1", "--threads", "1", "--steps", "2", "--std-coeff", "10", *extra]
    return CliRunner().invoke(jepa_main, args, env=env or {}), out, metrics


def test_jepa_cli_killed_and_resumed_ends_with_the_weights_of_an_uninterrupted_run(tiny_data_dir, tmp_path):
    reference, ref_out, ref_metrics = run_cli(tiny_data_dir, tmp_path, "ref")
    assert reference.exit_code == 0, reference.output
    resume = ["--resume-dir", str(tmp_path / "resume"), "--checkpoint-every", "2"]
    stopped, out, metrics = run_cli(tiny_data_dir, tmp_path, "run", resume, env={STOP_AFTER_STEPS_ENV: "3"})
    assert stopped.exit_code == 75, stopped.output
    assert (tmp_path / "resume" / STATE_FILE).is_file() and not out.exists()
    resumed, out, metrics = run_cli(tiny_data_dir, tmp_path, "run", resume)
    assert resumed.exit_code == 0, resumed.output
    expected, got = load_checkpoint(ref_out), load_checkpoint(out)
    for key in expected["state_dict"]:
        assert torch.equal(expected["state_dict"][key], got["state_dict"][key]), key
    losses = lambda path: [row["loss"] for row in json.loads(path.read_text())["epochs"]]  # noqa: E731
    assert losses(metrics) == losses(ref_metrics)
    assert got["meta"]["family"] == "jepa" and got["model_config"]["ssl"]["steps"] == 2
    build_encoder(got["model_config"]).load_state_dict(got["state_dict"], strict=True)


def test_jepa_cli_refuses_a_tubelet_encoder_with_exit_2(tiny_data_dir, tmp_path):
    result, out, _ = run_cli(tiny_data_dir, tmp_path, "bad", ["--arch", "videomae_vit_tiny"])
    assert result.exit_code == 2 and "'videomae_vit_tiny' (family videomae) mixes frames" in result.output
    assert not out.exists()
