"""Checkpoint and resume-state loads of files that are not what they claim: exit 2 naming the file."""

from __future__ import annotations

import os

import click
import pytest
import torch
from click.testing import CliRunner

from whatnext.inference import cache_probs
from whatnext.runtime.checkpoint import CheckpointError, load_checkpoint
from whatnext.runtime.cli_options import training_options
from whatnext.runtime.trainer import STATE_FILE, Trainer

CONFIG = {"encoder": "conv3d_tiny", "head": "attn", "num_classes": 33, "img_size": 16, "num_frames": 4}


class RunsCode:
    """Pickles as a call to os.system: a checkpoint that would run code if loaded without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def text_file(path):
    path.write_text("epoch,loss\n1,0.5\n")  # first byte 'e' (101): torch.load used to raise KeyError: 101
    return path


def no_kind(path):
    torch.save({"format": 1, "model_config": CONFIG, "state_dict": {}}, path)
    return path


def no_model_config(path):
    torch.save({"format": 1, "kind": "classifier", "state_dict": {}, "meta": {}}, path)
    return path


def with_code(path):
    torch.save({"format": 1, "kind": "classifier", "payload": RunsCode(path.parent / "pwned")}, path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (text_file, "unreadable or truncated checkpoint"),
        (no_kind, "checkpoint lacks ['kind']"),
        (no_model_config, "checkpoint lacks ['model_config']"),
        (with_code, "refused: not a plain-weights checkpoint"),
    ],
    ids=["text-file", "format-but-no-kind", "no-model-config", "pickle-with-code"],
)
def test_bad_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path / "member.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, expected_kind="classifier")
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("make", [text_file, no_kind, no_model_config, with_code], ids=["text-file", "no-kind", "no-model-config", "pickle-with-code"])
def test_cache_probs_exits_2_naming_a_bad_checkpoint(tmp_path, make):
    path = make(tmp_path / "member.pt")
    (tmp_path / "data").mkdir()
    args = ["--data", tmp_path / "data", "--ckpt", path, "--split", "val", "--member", "m", "--fit", "train", "--out", tmp_path / "c.npz"]
    result = CliRunner().invoke(cache_probs.main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert f"{path}: " in result.output
    assert "Traceback" not in result.output and not (tmp_path / "c.npz").exists()


def resume_command():
    """A training CLI in miniature: the shared flags, a trainer, and its resume."""

    @click.command()
    @training_options(max_epochs=1)
    def command(train):
        model = torch.nn.Linear(2, 1)
        Trainer(model, [(torch.zeros(2), torch.zeros(1))] * 4, lambda m, b: m(b[0]).sum(), train, fingerprint={}).resume_if_possible()

    return command


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (text_file, "unreadable or truncated resume state"),
        (with_code, "refused: not a plain-weights resume state"),
        (lambda path: torch.save([1, 2], path) or path, "not a whatnext trainer state"),
    ],
    ids=["text-file", "pickle-with-code", "a-list"],
)
def test_trainer_resume_exits_2_naming_a_bad_state_file(tmp_path, make, message):
    (tmp_path / "resume").mkdir()
    path = make(tmp_path / "resume" / STATE_FILE)
    result = CliRunner().invoke(resume_command(), ["--resume-dir", str(tmp_path / "resume")])
    assert result.exit_code == 2, result.output
    assert f"{path}: " in result.output and message in result.output
    assert not (tmp_path / "resume" / "pwned").exists()
