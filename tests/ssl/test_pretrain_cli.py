"""The SSL pretraining CLIs end to end on the tiny generated data: outputs, exact resume, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from whatnext.models import build_encoder
from whatnext.runtime.checkpoint import load_checkpoint, save_checkpoint
from whatnext.runtime.trainer import STATE_FILE, STOP_AFTER_STEPS_ENV
from whatnext.ssl.cascade import encoder_config
from whatnext.ssl.mae_models import build_masked_autoencoder
from whatnext.ssl.pretrain_mae2d import main as mae2d_main
from whatnext.ssl.pretrain_videomae import main as videomae_main
from whatnext.ssl.tats import DEFAULTS as TATS_DEFAULTS

CLIS = {"mae2d": (mae2d_main, "mae2d_vit_tiny"), "videomae": (videomae_main, "videomae_vit_tiny")}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def run(tiny_data_dir, tmp_path, family="mae2d", name="g1", extra=(), env=None):
    """Run a CLI on the 68 val clips (4 steps of 16 clips per epoch, 2 epochs); returns (result, out, metrics)."""
    main, arch = CLIS[family]
    out, metrics = tmp_path / f"{name}.pt", tmp_path / f"{name}.json"
    args = ["--data", str(tiny_data_dir), "--arch", arch, "--img-size", "32", "--splits", "val",
            "--out", str(out), "--metrics", str(metrics), "--epochs", "2", "--batch-size", "16",
            "--lr", "2e-3", "--warmup-epochs", "0.5", "--seed", "1", "--threads", "1", *extra]
    result = CliRunner().invoke(main, args, env=env or {})
    return result, out, metrics


@pytest.mark.parametrize("family", ["mae2d", "videomae"])
def test_cli_writes_an_encoder_checkpoint_and_per_epoch_metrics(tiny_data_dir, tmp_path, family):
    result, out, metrics = run(tiny_data_dir, tmp_path, family, extra=["--resume-dir", str(tmp_path / "resume")])
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(out, expected_kind="encoder")
    build_encoder(ckpt["model_config"]).load_state_dict(ckpt["state_dict"], strict=True)
    assert ckpt["meta"]["family"] == family and ckpt["meta"]["generation"] == 1
    report = json.loads(metrics.read_text())
    assert [row["epoch"] for row in report["epochs"]] == [0, 1]
    assert report["final_loss"] == report["epochs"][-1]["loss"] == ckpt["meta"]["final_loss"]
    assert report["num_clips"] == 68 and report["steps"] == 8
    assert not (tmp_path / "resume").exists()


def test_default_splits_use_every_clip_of_train_val_and_test(tiny_data_dir, tmp_path):
    main, arch = CLIS["mae2d"]
    result = CliRunner().invoke(main, ["--data", str(tiny_data_dir), "--arch", arch, "--img-size", "32",
                                       "--out", str(tmp_path / "e.pt"), "--metrics", str(tmp_path / "m.json"),
                                       "--resume-dir", str(tmp_path / "resume")],
                                env={STOP_AFTER_STEPS_ENV: "0"})  # stop before the first step, state saved
    assert result.exit_code == 75, result.output
    state = torch.load(tmp_path / "resume" / STATE_FILE, weights_only=True)
    assert state["fingerprint"]["num_items"] == 450 + 68 + 69
    assert state["fingerprint"]["task"]["splits"] == ["train", "val", "test"]


def test_interrupted_run_resumed_ends_with_the_weights_of_an_uninterrupted_run(tiny_data_dir, tmp_path):
    reference, ref_out, ref_metrics = run(tiny_data_dir, tmp_path, name="ref")
    assert reference.exit_code == 0, reference.output
    resume = ["--resume-dir", str(tmp_path / "resume"), "--checkpoint-every", "2"]
    stopped, out, metrics = run(tiny_data_dir, tmp_path, extra=resume, env={STOP_AFTER_STEPS_ENV: "3"})
    assert stopped.exit_code == 75, stopped.output
    assert (tmp_path / "resume" / STATE_FILE).is_file() and not out.exists() and not metrics.exists()
    resumed, out, metrics = run(tiny_data_dir, tmp_path, extra=resume)
    assert resumed.exit_code == 0, resumed.output
    expected, got = load_checkpoint(ref_out)["state_dict"], load_checkpoint(out)["state_dict"]
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    losses = lambda path: [row["loss"] for row in json.loads(path.read_text())["epochs"]]  # noqa: E731
    assert losses(metrics) == losses(ref_metrics)
    assert not (tmp_path / "resume").exists()


def test_deadline_already_reached_checkpoints_and_exits_75_without_outputs(tiny_data_dir, tmp_path):
    result, out, metrics = run(tiny_data_dir, tmp_path, extra=["--resume-dir", str(tmp_path / "resume"),
                                                                "--deadline", "2020-01-01T00:00:00+00:00"])
    assert result.exit_code == 75, result.output
    assert torch.load(tmp_path / "resume" / STATE_FILE, weights_only=True)["step"] == 0
    assert not out.exists() and not metrics.exists()


def test_resume_with_other_arguments_is_refused(tiny_data_dir, tmp_path):
    resume = ["--resume-dir", str(tmp_path / "resume")]
    stopped, _, _ = run(tiny_data_dir, tmp_path, extra=resume, env={STOP_AFTER_STEPS_ENV: "1"})
    assert stopped.exit_code == 75
    result, _, _ = run(tiny_data_dir, tmp_path, extra=[*resume, "--mask-ratio", "0.5"])
    assert result.exit_code == 2 and "differs in: task.config.ssl.mask_ratio" in result.output


def test_arch_of_the_other_family_is_refused_listing_the_right_ones(tiny_data_dir, tmp_path):
    main, _ = CLIS["mae2d"]
    result = CliRunner().invoke(main, ["--data", str(tiny_data_dir), "--arch", "videomae_vit_tiny", "--img-size", "32",
                                       "--out", str(tmp_path / "e.pt"), "--metrics", str(tmp_path / "m.json")])
    assert result.exit_code == 2
    assert "'videomae_vit_tiny' is not a mae2d encoder; use one of: mae2d_vit_b16, mae2d_vit_tiny" in result.output


def test_unknown_arch_is_refused_listing_known_encoders(tiny_data_dir, tmp_path):
    main, _ = CLIS["mae2d"]
    result = CliRunner().invoke(main, ["--data", str(tiny_data_dir), "--arch", "vit_huge", "--img-size", "32",
                                       "--out", str(tmp_path / "e.pt"), "--metrics", str(tmp_path / "m.json")])
    assert result.exit_code == 2 and "unknown encoder 'vit_huge'" in result.output and "mae2d_vit_tiny" in result.output


def test_bad_splits_option_is_a_usage_error(tiny_data_dir, tmp_path):
    result, _, _ = run(tiny_data_dir, tmp_path, extra=["--splits", "train,holdout"])
    assert result.exit_code == 2 and "distinct splits among train, val, test" in result.output


def test_init_encoder_of_the_other_family_is_refused_naming_the_file(tiny_data_dir, tmp_path):
    config = encoder_config("videomae_vit_tiny", 32, {"mask_ratio": 0.9})
    prev = tmp_path / "videomae_g1.pt"
    save_checkpoint(prev, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict(),
                    meta={"family": "videomae", "generation": 1})
    result, out, _ = run(tiny_data_dir, tmp_path, extra=["--init-encoder", str(prev)])
    assert result.exit_code == 2 and f"{prev}: holds a 'videomae' encoder, cannot seed a 'mae2d'" in result.output
    assert not out.exists()


def test_init_encoder_of_another_image_size_is_refused(tiny_data_dir, tmp_path):
    config = encoder_config("mae2d_vit_tiny", 64, {"mask_ratio": 0.75})
    prev = tmp_path / "g1_64px.pt"
    save_checkpoint(prev, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict(),
                    meta={"family": "mae2d", "generation": 1})
    result, _, _ = run(tiny_data_dir, tmp_path, extra=["--init-encoder", str(prev)])
    assert result.exit_code == 2 and f"{prev}: encoder" in result.output and "differs" in result.output


def test_classifier_checkpoint_as_init_encoder_is_refused(tiny_data_dir, tmp_path):
    prev = tmp_path / "member.pt"
    save_checkpoint(prev, kind="classifier", model_config={"encoder": "mae2d_vit_tiny"}, state_dict={}, meta={})
    result, _, _ = run(tiny_data_dir, tmp_path, extra=["--init-encoder", str(prev)])
    assert result.exit_code == 2 and "holds a 'classifier' checkpoint, expected 'encoder'" in result.output


def test_truncated_init_encoder_is_refused(tiny_data_dir, tmp_path):
    prev = tmp_path / "cut.pt"
    good = tmp_path / "good.pt"
    config = encoder_config("mae2d_vit_tiny", 32, {"mask_ratio": 0.75})
    save_checkpoint(good, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict(),
                    meta={"family": "mae2d"})
    prev.write_bytes(good.read_bytes()[:1000])
    result, _, _ = run(tiny_data_dir, tmp_path, extra=["--init-encoder", str(prev)])
    assert result.exit_code == 2 and f"{prev}: unreadable or truncated checkpoint" in result.output


def test_clip_residual_is_kept_in_the_encoder_config_and_reaches_the_classifier():
    from whatnext.finetune.driver import classifier_config
    from whatnext.models import build_encoder, build_model

    config = encoder_config("videomae_vit_tiny", 32, {"mask_ratio": 0.9}, clip_residual=True)
    assert build_encoder(config).clip_residual
    assert build_model(classifier_config(config, "attn", drop_path=0.0)).encoder.clip_residual
    assert not build_encoder(encoder_config("videomae_vit_tiny", 32, {"mask_ratio": 0.9})).clip_residual


@pytest.mark.parametrize("family", ["mae2d", "videomae"])
def test_labels_are_not_read_so_a_label_outside_the_classes_does_not_matter(tiny_data_dir, tmp_path, family):
    import shutil

    main, _ = CLIS[family]
    assert "no labels read" in CliRunner().invoke(main, ["--help"]).output
    data = shutil.copytree(tiny_data_dir, tmp_path / "data")
    lines = (data / "val.csv").read_text().splitlines()
    lines[1] = lines[1].split(",")[0] + ",40"
    (data / "val.csv").write_text("\n".join(lines) + "\n")
    result, out, metrics = run(data, tmp_path, family, extra=["--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(metrics.read_text())["num_clips"] == 68


def test_target_motion_weight_and_norm_pix_flags_reach_the_model_and_the_records(tiny_data_dir, tmp_path):
    extra = ["--target", "residual", "--motion-weight", "2", "--norm-pix", "false", "--epochs", "1"]
    result, out, metrics = run(tiny_data_dir, tmp_path, "videomae", extra=extra)
    assert result.exit_code == 0, result.output
    ssl = load_checkpoint(out)["model_config"]["ssl"]
    assert ssl == {"mask_ratio": 0.9, "target": "residual", "motion_weight": 2.0, "norm_pix": False,
                   "masking": "random", **TATS_DEFAULTS}
    model = build_masked_autoencoder(load_checkpoint(out)["model_config"])
    assert (model.target, model.motion_weight, model.norm_pix) == ("residual", 2.0, False)


def test_unknown_target_is_refused_by_the_cli(tiny_data_dir, tmp_path):
    result, out, _ = run(tiny_data_dir, tmp_path, extra=["--target", "flow"])
    assert result.exit_code == 2 and "'flow' is not one of 'pixels', 'residual'" in result.output
    assert not out.exists()
