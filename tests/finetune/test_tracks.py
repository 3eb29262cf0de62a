"""The three finetuning CLIs end to end on a micro data dir: outputs, twins, pseudo union, resume, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from whatnext.finetune import track_a_mae2d, track_a_scratch, track_a_videomae
from whatnext.models import build_model
from whatnext.runtime.checkpoint import load_checkpoint
from whatnext.runtime.trainer import EXIT_INCOMPLETE, STOP_AFTER_STEPS_ENV

FAST = ["--epochs", "1", "--batch-size", "32", "--threads", "1"]


def run(command, args, env=None):
    return CliRunner().invoke(command.main, [str(a) for a in args], env=env, catch_exceptions=False)


def scratch_args(data, tmp_path, name="m", fit="train", extra=()):
    return ["--data", data, "--arch", "conv3d_tiny", "--head", "attn", "--fit", fit,
            "--out", tmp_path / f"{name}.pt", "--metrics", tmp_path / f"{name}.json", *FAST, *extra]


def test_fit_train_writes_a_checkpoint_per_epoch_stop_scores_and_the_final_val_score(micro_data_dir, tmp_path):
    result = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, extra=["--max-epochs", "2"]))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [0, 1] and metrics["epochs_run"] == 2
    assert all(0.0 <= e["stop_top1"] <= 1.0 and e["stop_loss"] > 0 for e in metrics["epochs"])
    assert "val_top1" not in metrics["epochs"][0] and 0.0 <= metrics["val_top1"] <= metrics["val_top5"] <= 1.0
    assert metrics["train_clips"] == {"train": 81}  # 9 of the 90 training clips are the stop split
    stop = metrics["stop_split"]
    assert stop["clips"] == len(stop["clip_ids"]) == len(stop["correct"]) == 9
    assert stop["top1"] == pytest.approx(sum(stop["correct"]) / 9)
    assert metrics["stop_best_score"] == pytest.approx(stop["loss"], rel=1e-5)  # the kept weights are the best epoch's
    chance_clips = metrics["stop_chance_top1"] * 9  # the training majority's share of the stop split
    assert 0 <= chance_clips < 9 and chance_clips == pytest.approx(round(chance_clips))
    ckpt = load_checkpoint(tmp_path / "m.pt", expected_kind="classifier")
    build_model(ckpt["model_config"]).load_state_dict(ckpt["state_dict"], strict=True)


def test_clip_residual_reaches_the_checkpoint_and_a_timm_encoder_refuses_it(micro_data_dir, tmp_path):
    result = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, extra=["--max-epochs", "1", "--clip-residual"]))
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "m.pt", expected_kind="classifier")
    assert ckpt["model_config"]["encoder_kwargs"] == {"clip_residual": True}
    assert build_model(ckpt["model_config"]).encoder.clip_residual
    args = scratch_args(micro_data_dir, tmp_path, name="t", extra=["--clip-residual", "--img-size", "224"])
    args[args.index("conv3d_tiny")] = "efficientformer_l1"
    refused = CliRunner().invoke(track_a_scratch.main, [str(a) for a in args])
    assert refused.exit_code != 0 and "efficientformer_l1" in refused.output and "clip_residual" in refused.output


def test_trainval_twin_learns_from_train_and_val_and_scores_nothing(micro_data_dir, tmp_path):
    result = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, fit="trainval"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert sum(metrics["train_clips"].values()) == 90 + 32 - 12 and metrics["stop_split"]["clips"] == 12
    assert "val_top1" not in metrics


def test_same_seed_gives_identical_weights(micro_data_dir, tmp_path):
    for name in ("a", "b"):
        assert run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name=name)).exit_code == 0
    a, b = (load_checkpoint(tmp_path / f"{n}.pt")["state_dict"] for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loader_workers_give_the_weights_of_the_main_process_loader(micro_data_dir, tmp_path):
    """Workers only decode and collate; every random draw of the augmentation is the training step's."""
    for name, workers in (("main", "0"), ("workers", "2")):
        assert run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name=name, extra=["--workers", workers])).exit_code == 0
    a, b = (load_checkpoint(tmp_path / f"{n}.pt")["state_dict"] for n in ("main", "workers"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_clips_of_different_frame_widths_train_and_validate(micro_data_dir, tmp_path):
    """The challenge's frames keep their aspect ratio: a batch mixing 16 x 16 and 16 x 24 clips is padded by
    the collate and cropped per clip by the training step; validation views resize each clip."""
    import io
    import zipfile

    from PIL import Image

    from whatnext.data.zip_dataset import ClipDataset

    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.csv", "val.csv", "test.csv", "norm_stats.json"):
        (data / name).write_bytes((micro_data_dir / name).read_bytes())
    with zipfile.ZipFile(micro_data_dir / "frames.zip") as source, zipfile.ZipFile(data / "frames.zip", "w") as out:
        for k, info in enumerate(info for info in source.infolist() if not info.is_dir()):
            payload = source.read(info)
            if (k // 4) % 2:  # every other clip (4 frames each, stored clip by clip) widened to 24 px
                buffer = io.BytesIO()
                Image.open(io.BytesIO(payload)).resize((24, 16)).save(buffer, format="JPEG")
                payload = buffer.getvalue()
            out.writestr(info.filename, payload)
    assert {tuple(ClipDataset(data, "train").read_frames(i).shape[-2:]) for i in range(4)} == {(16, 16), (16, 24)}
    result = run(track_a_scratch, scratch_args(data, tmp_path, extra=["--img-size", "16"]))
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads((tmp_path / "m.json").read_text())["val_top1"] <= 1.0


def test_interrupted_run_exits_75_and_resumes_to_the_uninterrupted_weights(micro_data_dir, tmp_path):
    resume = ["--resume-dir", tmp_path / "resume", "--checkpoint-every", "1"]
    assert run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name="whole")).exit_code == 0
    stopped = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name="cut", extra=resume), env={STOP_AFTER_STEPS_ENV: "2"})
    assert stopped.exit_code == EXIT_INCOMPLETE
    assert not (tmp_path / "cut.pt").exists() and (tmp_path / "resume").is_dir()
    assert run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name="cut", extra=resume)).exit_code == 0
    whole, cut = (load_checkpoint(tmp_path / f"{n}.pt")["state_dict"] for n in ("whole", "cut"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert not (tmp_path / "resume").exists()


def test_a_micro_batched_run_with_both_aux_losses_resumes_to_its_uninterrupted_weights(micro_data_dir, mae2d_encoder_ckpt, tmp_path):
    """--micro-batch 12 of 32 (passes of 12, 12, 8 clips, their clip ids and frame sizes cut alike), as the
    retry after a CUDA out-of-memory error runs it: interrupted and resumed, the weights of one run."""
    def args(name, extra=()):
        return ["--data", micro_data_dir, "--encoder-ckpt", mae2d_encoder_ckpt, "--head", "perceiver", "--fit", "train",
                "--aux", "pair_direction", "--aux", "consistency", "--out", tmp_path / f"{name}.pt",
                "--metrics", tmp_path / f"{name}.json", *FAST, "--micro-batch", "12", *extra]

    resume = ["--resume-dir", tmp_path / "resume", "--checkpoint-every", "1"]
    assert run(track_a_mae2d, args("whole")).exit_code == 0
    assert run(track_a_mae2d, args("cut", resume), env={STOP_AFTER_STEPS_ENV: "2"}).exit_code == EXIT_INCOMPLETE
    assert run(track_a_mae2d, args("cut", resume)).exit_code == 0
    whole, cut = (load_checkpoint(tmp_path / f"{n}.pt")["state_dict"] for n in ("whole", "cut"))
    assert all(torch.equal(whole[k], cut[k]) for k in whole)


def test_exhausted_time_budget_exits_75_with_state_saved_and_no_outputs(micro_data_dir, tmp_path):
    extra = ["--time-budget-min", "0", "--safety-margin-min", "0", "--resume-dir", tmp_path / "resume"]
    result = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, extra=extra))
    assert result.exit_code == EXIT_INCOMPLETE
    assert (tmp_path / "resume" / "trainer_state.pt").is_file()
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "m.json").exists()


def test_mae2d_track_with_both_aux_losses_trains_and_keeps_aux_head_out_of_checkpoint(micro_data_dir, mae2d_encoder_ckpt, tmp_path):
    args = ["--data", micro_data_dir, "--encoder-ckpt", mae2d_encoder_ckpt, "--head", "perceiver", "--fit", "train",
            "--aux", "pair_direction", "--aux", "consistency", "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST]
    result = run(track_a_mae2d, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["recipe"]["aux"] == ["pair_direction", "consistency"]
    assert metrics["init_encoder"] == str(mae2d_encoder_ckpt)
    ckpt = load_checkpoint(tmp_path / "m.pt", expected_kind="classifier")
    assert not any(k.startswith("direction") for k in ckpt["state_dict"])
    build_model(ckpt["model_config"]).load_state_dict(ckpt["state_dict"], strict=True)


def test_encoder_weights_come_from_the_ssl_checkpoint(micro_data_dir, videomae_encoder_ckpt, tmp_path):
    """With a zero learning rate the finetuned encoder is exactly the SSL encoder."""
    args = ["--data", micro_data_dir, "--encoder-ckpt", videomae_encoder_ckpt, "--head", "lstm", "--fit", "train",
            "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST, "--lr", "1e-30", "--weight-decay", "0"]
    assert run(track_a_videomae, args).exit_code == 0
    encoder = load_checkpoint(videomae_encoder_ckpt)["state_dict"]
    finetuned = load_checkpoint(tmp_path / "m.pt")["state_dict"]
    assert all(torch.allclose(finetuned[f"encoder.{k}"], v) for k, v in encoder.items())


def test_videomae_pseudo_union_adds_every_test_clip(micro_data_dir, videomae_encoder_ckpt, tmp_path):
    test_ids = (micro_data_dir / "test.csv").read_text().split()[1:]
    pseudo = tmp_path / "pseudo.csv"
    pseudo.write_text("video_id,label\n" + "".join(f"{clip},{i % 33}\n" for i, clip in enumerate(test_ids)))
    args = ["--data", micro_data_dir, "--encoder-ckpt", videomae_encoder_ckpt, "--head", "attn", "--fit", "trainval",
            "--pseudo", pseudo, "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST]
    result = run(track_a_videomae, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["train_clips"]["pseudo"] == len(test_ids)  # pseudo-labelled clips all train, none is held out
    assert sum(metrics["train_clips"].values()) == 90 + 32 + len(test_ids) - 12


def test_pseudo_csv_with_unknown_clip_is_a_clear_error(micro_data_dir, videomae_encoder_ckpt, tmp_path):
    pseudo = tmp_path / "pseudo.csv"
    pseudo.write_text("video_id,label\nnot_a_clip,3\n")
    args = ["--data", micro_data_dir, "--encoder-ckpt", videomae_encoder_ckpt, "--head", "attn", "--fit", "train",
            "--pseudo", pseudo, "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST]
    result = run(track_a_videomae, args)
    assert result.exit_code == 2
    assert "pseudo.csv: line 2: clip 'not_a_clip' is not in the test split" in result.output


def test_encoder_of_the_wrong_family_is_a_clear_error(micro_data_dir, videomae_encoder_ckpt, tmp_path):
    args = ["--data", micro_data_dir, "--encoder-ckpt", videomae_encoder_ckpt, "--head", "attn", "--fit", "train",
            "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST]
    result = run(track_a_mae2d, args)
    assert result.exit_code == 2
    assert f"{videomae_encoder_ckpt}: holds a 'videomae' encoder" in result.output
    assert "track_a_mae2d finetunes 'mae2d' encoders" in result.output


def test_classifier_checkpoint_given_as_encoder_is_a_clear_error(micro_data_dir, tmp_path):
    assert run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name="clf")).exit_code == 0
    args = ["--data", micro_data_dir, "--encoder-ckpt", tmp_path / "clf.pt", "--head", "attn", "--fit", "train",
            "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST]
    result = run(track_a_mae2d, args)
    assert result.exit_code == 2
    assert "clf.pt: holds a 'classifier' checkpoint, expected 'encoder'" in result.output


@pytest.mark.parametrize("track", [track_a_mae2d, track_a_videomae, track_a_scratch])
def test_help_works(track):
    result = CliRunner().invoke(track.main, ["--help"])
    assert result.exit_code == 0 and "--fit [train|trainval]" in result.output


def test_val_is_never_read_while_training(micro_data_dir, tmp_path, monkeypatch):
    """Stopping by progress scores the stop split carved from train: during Trainer.fit no val clip is decoded
    (val is read once, after training, for the summary)."""
    from whatnext.data.zip_dataset import ClipDataset
    from whatnext.runtime.trainer import Trainer

    training, read = [False], []
    fit, decode = Trainer.fit, ClipDataset.decode_frames

    def spied_fit(self):
        training[0] = True
        try:
            return fit(self)
        finally:
            training[0] = False

    def spied_decode(self, i):
        read.append((self.split, training[0]))
        return decode(self, i)

    monkeypatch.setattr(Trainer, "fit", spied_fit)
    monkeypatch.setattr(ClipDataset, "decode_frames", spied_decode)
    result = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, extra=["--max-epochs", "2", "--patience", "1"]))
    assert result.exit_code == 0, result.output
    assert ("train", True) in read and ("val", False) in read
    assert ("val", True) not in read


def test_jepa_track_finetunes_a_per_frame_jepa_encoder_with_the_shared_heads(micro_data_dir, tmp_path):
    """A JEPA checkpoint of conv2d_tiny feeds the attn head; at a zero learning rate the finetuned encoder's
    weights are the checkpoint's (batch-norm statistics move with the data)."""
    from whatnext.finetune import track_a_jepa
    from whatnext.models import build_encoder
    from whatnext.runtime.checkpoint import save_checkpoint

    config = {"encoder": "conv2d_tiny", "img_size": 16, "num_frames": 4, "ssl": {"context": 2, "steps": 2}}
    torch.manual_seed(0)
    encoder = tmp_path / "jepa.pt"
    save_checkpoint(encoder, kind="encoder", model_config=config, state_dict=build_encoder(config).state_dict(),
                    meta={"family": "jepa", "generation": 1})
    args = ["--data", micro_data_dir, "--encoder-ckpt", encoder, "--head", "attn", "--fit", "train",
            "--out", tmp_path / "m.pt", "--metrics", tmp_path / "m.json", *FAST, "--lr", "1e-30", "--weight-decay", "0"]
    result = run(track_a_jepa, args)
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "m.pt", expected_kind="classifier")
    assert "ssl" not in ckpt["model_config"] and ckpt["model_config"]["head"] == "attn"
    weights = load_checkpoint(encoder)["state_dict"]
    params = [k for k in weights if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and all(torch.allclose(ckpt["state_dict"][f"encoder.{k}"], weights[k]) for k in params)


def test_a_fold_member_learns_from_fewer_clips_and_records_its_fold(micro_data_dir, tmp_path):
    full = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name="full"))
    fold = run(track_a_scratch, scratch_args(micro_data_dir, tmp_path, name="fold", extra=["--fold", "1/2"]))
    assert full.exit_code == 0 and fold.exit_code == 0, fold.output
    clips = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("full", "fold")}
    assert clips["fold"]["recipe"]["fold"] == "1/2" and clips["fold"]["recipe"]["fold_pool"] == "train"
    assert 0.4 < clips["fold"]["train_clips"]["train"] / clips["full"]["train_clips"]["train"] < 0.6
