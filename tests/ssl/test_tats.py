"""TATS adaptive token selection: exact visible counts, sampling without replacement, the PPO update, the frozen
sampler's MAE step, the warm-up, and an exact kill/resume through the SSL CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from whatnext.runtime.checkpoint import load_checkpoint
from whatnext.runtime.trainer import STATE_FILE, STOP_AFTER_STEPS_ENV, param_groups
from whatnext.ssl.mae_models import build_masked_autoencoder
from whatnext.ssl.pretrain_mae2d import main as mae2d_main
from whatnext.ssl.tats import (Episode, PPOSettings, TrajectoryAttention, gumbel_top_k, ppo_loss,
                               sequence_log_probs)

NO_COEFFS = {"tats_policy_coeff": 1.0, "tats_value_coeff": 0.0, "tats_entropy_coeff": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _model(arch="mae2d_vit_tiny", ratio=0.75, seed=0, **ssl):
    torch.manual_seed(seed)
    settings = {"masking": "tats", "mask_ratio": ratio, "tats_warmup_epochs": 0.0} | ssl
    model = build_masked_autoencoder({"encoder": arch, "img_size": 32, "num_frames": 4, "ssl": settings})
    if model.tats is not None:
        model.tats.schedule(steps_per_epoch=2)
    return model


def _clips(batch=4, seed=1):
    return torch.randn(batch, 4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_trajectory_attention_is_equivariant_to_patch_and_frame_order():
    torch.manual_seed(0)
    attention = TrajectoryAttention(12, 3)
    x = torch.randn(2, 3, 5, 12)
    patches, frames = torch.tensor([3, 0, 4, 1, 2]), torch.tensor([2, 0, 1])
    out = attention(x)
    assert out.shape == (2, 3, 5, 12)
    torch.testing.assert_close(attention(x[:, :, patches]), out[:, :, patches])
    torch.testing.assert_close(attention(x[:, frames]), out[:, frames])
    # a token's output depends on the other frames (the trajectory), not only on its own frame
    y = x.clone()
    y[:, 2] += 1.0
    assert not torch.allclose(attention(y)[:, 0], out[:, 0])


@pytest.mark.parametrize(("arch", "ratio", "visible_per_step"), [
    ("mae2d_vit_tiny", 0.75, 4), ("mae2d_vit_tiny", 0.9, 2), ("videomae_vit_tiny", 0.75, 4), ("videomae_vit_tiny", 0.9, 2)])
def test_the_sampler_keeps_exactly_the_random_maskings_count_of_visible_tokens(arch, ratio, visible_per_step):
    model = _model(arch, ratio)
    with torch.no_grad():  # extreme logits: a few tokens far above the rest must not change the count
        model.tats.sampler.actor.bias.fill_(0.0)
        model.tats.sampler.actor.weight.mul_(1e4)
    out = model(_clips(6))
    random_mask = model.masking(6, model.encoder.grid, torch.Generator().manual_seed(0))
    sequences = model.encoder.to_sequences(~out.mask).sum(1)
    assert sequences.tolist() == model.encoder.to_sequences(~random_mask).sum(1).tolist()
    steps = model.encoder.steps_per_sequence
    assert set(sequences.tolist()) == {visible_per_step * steps}
    assert len(model.tats.buffer) == 0 and model.tats.steps == 1  # one episode recorded and trained on


def test_gumbel_top_k_draws_without_replacement_from_the_softmax():
    p = torch.tensor([0.5, 0.3, 0.2])
    logits = p.log().expand(40_000, 3)
    generator = torch.Generator().manual_seed(0)
    one = gumbel_top_k(logits, 1, generator).float().mean(0)
    torch.testing.assert_close(one, p, atol=0.01, rtol=0)
    two = gumbel_top_k(logits, 2, generator)
    assert (two.sum(1) == 2).all()
    # P(i among 2 draws without replacement) = p_i + sum_{j != i} p_j p_i / (1 - p_j)
    exact = torch.tensor([p[i] + sum(p[j] * p[i] / (1 - p[j]) for j in range(3) if j != i) for i in range(3)])
    torch.testing.assert_close(two.float().mean(0), exact, atol=0.01, rtol=0)
    with pytest.raises(ValueError, match="cannot keep 3 of 3"):
        gumbel_top_k(logits[:2], 3)


def _episode(model, seed=0):
    """A recorded episode of the sampler on generated tokens: a random quarter of them carry a marker (a fixed
    shift of their features) and get reward 1 when masked, the others 0.1; the clip's old value 0.5.
    Returns (episode, marked bool [B, T', N])."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(8, *model.encoder.grid, model.encoder.embed_dim, generator=generator)
    marked = torch.rand(tokens.shape[:3], generator=generator) < 0.25
    tokens = tokens + 2.0 * marked[..., None] * torch.linspace(-1, 1, tokens.shape[-1])
    mask, episode = model.tats.draw(tokens, model.masked_per_sequence, generator)
    episode.rewarded, episode.reward = mask, torch.where(marked, 1.0, 0.1) * mask
    episode.old_value = torch.full_like(episode.old_value, 0.5)
    return episode, marked


def test_the_ppo_update_raises_the_probability_of_high_reward_tokens():
    model = _model(tats_lr=3e-3, tats_ppo_epochs=4, **NO_COEFFS)
    sampler = model.tats.sampler
    held_out, marked = _episode(model, seed=99)

    def marked_share():  # per frame, the probability of the marked tokens on clips no update saw
        return (sequence_log_probs(sampler(held_out.tokens)[0], 1).exp() * marked).sum(-1)

    before = marked_share()
    for seed in range(5):  # five phases, each on a freshly drawn episode
        model.tats.buffer = [_episode(model, seed)[0]]
        model.tats.update()
    after = marked_share()
    assert after.mean() > before.mean() + 0.1, (before.mean(), after.mean())
    assert (after > before).float().mean() > 0.9  # in (almost) every frame
    assert not sampler.actor.weight.requires_grad and sampler.actor.weight.grad is None  # frozen again after


def test_ppo_loss_clips_the_ratio_and_trains_the_value_head():
    logits = torch.zeros(1, 1, 4, requires_grad=True)
    value = torch.tensor([0.0], requires_grad=True)
    old = torch.log(torch.tensor([[[0.25, 0.25, 0.4, 0.1]]]))  # ratios now 1, 1, 0.625, 2.5
    rewarded = torch.tensor([[[True, False, True, True]]])
    episode = Episode(tokens=torch.zeros(1, 1, 4, 2), mask=rewarded, rewarded=rewarded,
                      reward=torch.tensor([[[2.0, 0.0, 2.0, 2.0]]]), old_log_prob=old, old_value=torch.tensor([1.0]))
    settings = PPOSettings(clip=0.2, policy_coeff=1.0, value_coeff=0.0, entropy_coeff=0.0, epochs=1, lr=1.0)
    loss, terms = ppo_loss(logits, value, episode, settings, steps_per_sequence=1)
    # advantage +1 on tokens 0, 2, 3: min(r A, clip(r) A) = 1, 0.625, 1.2 -> policy -(2.825 / 3)
    assert terms["policy"] == pytest.approx(-2.825 / 3)
    assert terms["value"] == pytest.approx(4.0) and terms["entropy"] == pytest.approx(math.log(4))
    loss.backward()
    # token 3 (ratio 2.5 > 1.2, clipped) gives no gradient of its own; tokens 0 and 2 do
    grad = logits.grad[0, 0]
    assert grad[0] < 0 and grad[2] < 0 and grad[1] > 0 and grad[3] > 0  # softmax coupling pushes 1, 3 down
    assert value.grad is None or value.grad.abs().item() == 0
    settings_v = PPOSettings(clip=0.2, policy_coeff=0.0, value_coeff=1.0, entropy_coeff=0.0, epochs=1, lr=1.0)
    ppo_loss(logits, value, episode, settings_v, steps_per_sequence=1)[0].backward()
    assert value.grad.item() == pytest.approx(-4.0)  # d/dv mean (v - 2)^2 at v = 0


def test_with_a_frozen_sampler_the_mae_step_is_the_random_mask_step_given_the_same_mask():
    tats = _model(tats_record_steps=2)  # the first episode is only recorded: no sampler update in this step
    random = _model(masking="random")
    random.load_state_dict({k: v for k, v in tats.state_dict().items() if not k.startswith("tats.")}, strict=True)
    sampler_before = {k: v.clone() for k, v in tats.tats.state_dict().items() if k != "_extra_state"}
    x = _clips()
    out = tats(x, torch.Generator().manual_seed(3))
    reference = random(x, mask=out.mask)
    assert not torch.equal(out.mask, random.masking(4, random.encoder.grid, torch.Generator().manual_seed(3)))
    assert torch.equal(out.loss, reference.loss)
    out.loss.backward()
    reference.loss.backward()
    for (name, p), (other, q) in zip(tats.named_parameters(), random.named_parameters()):
        assert name == other, name  # (MAE-2D pretraining leaves its temporal attention without gradient in both)
        assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad), name
    assert all(p.grad is None and not p.requires_grad for p in tats.tats.parameters())
    mae_params = {id(p) for group in param_groups(tats, 0.05) for p in group["params"]}
    assert not mae_params & {id(p) for p in tats.tats.parameters()}  # the MAE's optimiser never holds the sampler
    assert all(torch.equal(v, tats.tats.state_dict()[k]) for k, v in sampler_before.items())
    assert len(tats.tats.buffer) == 1 and tats.tats.buffer[0].rewarded.sum() == out.mask.sum()


def test_random_masking_until_the_warm_up_then_the_sampler_trains_after_each_recorded_phase():
    model = _model(tats_warmup_epochs=1.0, tats_record_steps=2, tats_lr=1e-2)  # warm-up = 2 steps
    random = _model(masking="random")
    actor = model.tats.sampler.actor.weight.clone()
    for step in range(2):
        out = model(_clips(seed=step), torch.Generator().manual_seed(step))
        assert torch.equal(out.mask, random.masking(4, random.encoder.grid, torch.Generator().manual_seed(step)))
        assert model.tats.buffer == []
    model(_clips(seed=2))
    assert len(model.tats.buffer) == 1 and torch.equal(model.tats.sampler.actor.weight, actor)
    model(_clips(seed=3))
    assert model.tats.buffer == [] and not torch.equal(model.tats.sampler.actor.weight, actor)
    assert model.tats.steps == 4 and set(model.tats.last_update) == {"policy", "value", "entropy"}
    model.eval()
    model(_clips(seed=4))  # the probe's eval-mode forwards neither count nor record
    assert model.tats.steps == 4


def _run(tiny_data_dir, tmp_path, name, extra=(), env=None):
    out, metrics = tmp_path / f"{name}.pt", tmp_path / f"{name}.json"
    args = ["--data", str(tiny_data_dir), "--arch", "mae2d_vit_tiny", "--img-size", "32", "--splits", "val",
            "--out", str(out), "--metrics", str(metrics), "--epochs", "2", "--batch-size", "16", "--lr", "2e-3",
            "--warmup-epochs", "0.5", "--seed", "1", "--threads", "1", "--masking", "tats", "--mask-ratio", "0.9",
            "--tats-warmup-epochs", "0.5", "--tats-record-steps", "2", "--tats-lr", "1e-2", *extra]
    return CliRunner().invoke(mae2d_main, args, env=env or {}), out, metrics


def test_tats_cli_killed_and_resumed_ends_with_the_weights_of_an_uninterrupted_run(tiny_data_dir, tmp_path):
    reference, ref_out, ref_metrics = _run(tiny_data_dir, tmp_path, "ref")
    assert reference.exit_code == 0, reference.output
    resume = ["--resume-dir", str(tmp_path / "resume"), "--checkpoint-every", "100"]
    # 4 steps an epoch: steps 1-2 random, 3-4 recorded then a PPO phase, step 5 recorded; stopped after it
    stopped, out, metrics = _run(tiny_data_dir, tmp_path, "run", resume, env={STOP_AFTER_STEPS_ENV: "5"})
    assert stopped.exit_code == 75, stopped.output
    state = torch.load(tmp_path / "resume" / STATE_FILE, weights_only=True)["model"]["tats._extra_state"]
    assert state["steps"] == 5 and len(state["buffer"]) == 1 and state["optimizer"]["state"]
    resumed, out, metrics = _run(tiny_data_dir, tmp_path, "run", resume)
    assert resumed.exit_code == 0, resumed.output
    expected, got = load_checkpoint(ref_out)["state_dict"], load_checkpoint(out)["state_dict"]
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    report = json.loads(metrics.read_text())
    assert [row["loss"] for row in report["epochs"]] == [row["loss"] for row in json.loads(ref_metrics.read_text())["epochs"]]
    assert report["masking"] == "tats" and report["tats_record_steps"] == 2
    assert load_checkpoint(out)["model_config"]["ssl"]["masking"] == "tats"


def test_a_sampler_state_changes_the_run(tiny_data_dir, tmp_path):
    """The resume test above is not vacuous: a different sampler learning rate gives other weights."""
    first, first_out, _ = _run(tiny_data_dir, tmp_path, "a")
    second, second_out, _ = _run(tiny_data_dir, tmp_path, "b", ["--tats-lr", "1e-1"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    a, b = load_checkpoint(first_out)["state_dict"], load_checkpoint(second_out)["state_dict"]
    assert any(not torch.equal(a[key], b[key]) for key in a)


def test_unknown_masking_is_a_usage_error(tiny_data_dir, tmp_path):
    result, _, _ = _run(tiny_data_dir, tmp_path, "bad", ["--masking", "adaptive"])
    assert result.exit_code == 2 and "'adaptive' is not one of 'random', 'tats'" in result.output


def test_tats_is_refused_with_several_ranks(monkeypatch):
    """The sampler's PPO phase runs inside the step, outside DistributedDataParallel's gradient sync."""
    import whatnext.ssl.tats as tats_module

    monkeypatch.setattr(tats_module, "current_ranks", lambda: type("Ranks", (), {"distributed": True})())
    with pytest.raises(ValueError, match="masking tats trains its sampler in one process"):
        _model()
    assert _model(masking="random").tats is None  # random masking is unaffected


def test_tats_refuses_micro_batches_it_would_count_as_steps(tiny_data_dir, tmp_path):
    """TATS counts its warm-up and recorded episodes in forward passes: a split batch would miscount them."""
    refused, out, _ = _run(tiny_data_dir, tmp_path, "micro", ["--micro-batch", "8"])
    assert refused.exit_code == 2 and "--micro-batch 8: TATS counts its warm-up" in refused.output and not out.exists()
