"""Names in the config checked when the graph is built: heads, encoders, SSL methods and training options
against the package's registries and CLIs (through workflow_scripts/cli_manifest.json)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_graph import failing_dry_run
from workflow_scripts.cli_manifest import MANIFEST, build_manifest, format_manifest, load_manifest
from workflow_scripts.config_checks import check_names
from workflow_scripts.member_table import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ["config.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*.yaml"))]


def test_manifest_is_what_the_registries_and_clis_say():
    """Fails when an encoder, head, SSL method or CLI option was added without rewriting the manifest:
    run ``python -m workflow_scripts.cli_manifest``."""
    assert MANIFEST.read_text(encoding="utf-8") == format_manifest(build_manifest()), (
        f"{MANIFEST} differs from the registries and CLIs: run python -m workflow_scripts.cli_manifest"
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_use_only_known_names(name):
    check_names(yaml.safe_load((REPO / name).read_text()), load_manifest())


def changed(change) -> dict:
    config = copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))
    change(config)
    return config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["members"]["cascade"].update(heads=["attn", "nonexistent"]),
         "members.cascade.heads: 'nonexistent' is not a registered head"),
        (lambda c: c["members"]["mae2d"]["variants"]["m4d_v2"].update(head="perciever"),
         "members.mae2d.variants.m4d_v2.head: 'perciever' is not a registered head; did you mean 'perceiver'?"),
        (lambda c: c["members"]["scratch"]["variants"]["conv3d"].update(arch="resnet500"),
         "members.scratch.variants.conv3d.arch: 'resnet500' is not a registered encoder"),
        (lambda c: c["ssl"]["mae2d"].update(arch="mae2d_vit_huge"),
         "ssl.mae2d.arch: 'mae2d_vit_huge' is not a registered encoder"),
        (lambda c: c["train"]["options"].update({"warmup-epoch": 0.5}),
         "train.options: 'warmup-epoch' is not an option of python -m whatnext.finetune.track_a_mae2d; did you mean 'warmup-epochs'?"),
        (lambda c: c["ssl"]["cascade"]["train"]["options"].update({"mask-ration": 0.9}),
         "ssl.cascade.train.options: 'mask-ration' is not an option of python -m whatnext.ssl.pretrain_videomae; did you mean 'mask-ratio'?"),
        (lambda c: c["train"]["options"].update({"mask-ratio": 0.9}),  # an SSL flag: every finetune job would get it
         "train.options: 'mask-ratio' is not an option of python -m whatnext.finetune.track_a_mae2d"),
        (lambda c: c["members"]["scratch"]["variants"]["conv2d"].update(train={"options": {"layer-decy": 0.5}}),
         "members.scratch.variants.conv2d.train.options: 'layer-decy' is not an option of python -m whatnext.finetune.track_a_scratch"),
        (lambda c: c["members"]["cascade"]["overrides"].update({"cascade-g2-attn-r0": {"options": {"dropout": 0.1}}}),
         "members.cascade.overrides.cascade-g2-attn-r0.options: 'dropout' is not an option of python -m whatnext.finetune.track_a_videomae"),
        (lambda c: c["ssl"]["mae2d"].update(method="jepa", masking="tats"),
         "ssl.mae2d.masking: 'tats' needs a masked-autoencoder method (mae2d, videomae); method 'jepa' masks no tokens"),
        (lambda c: c["ssl"]["mae2d"]["train"]["options"].update(masking="tats"),
         "ssl.mae2d.train.options: set the masking with ssl.mae2d.masking, not as an option"),
        (lambda c: c["members"]["cascade"]["train"].update(options={"micro-batch": 16}),
         "members.cascade.train.options: micro-batch is the workflow's (halved on the retry after a CUDA out-of-memory error)"),
    ],
    ids=["cascade-head", "variant-head", "scratch-arch", "ssl-arch", "train-option", "ssl-option", "ssl-flag-for-all",
         "variant-option", "override-option", "tats-without-masking", "masking-as-option", "micro-batch-as-option"],
)
def test_unknown_name_is_an_error_naming_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        check_names(changed(change), load_manifest())
    assert str(err.value).startswith(message)


def test_dry_run_refuses_an_unknown_head(tmp_path):
    def bad_head(config):
        config["members"]["cascade"]["heads"] = ["nonexistent"]

    assert "config error: members.cascade.heads: 'nonexistent' is not a registered head" in failing_dry_run(tmp_path, bad_head)


def test_dry_run_refuses_a_misspelt_training_option(tmp_path):
    def typo(config):
        config["train"]["options"] = {"warmup-epoch": 0.5}

    assert "train.options: 'warmup-epoch' is not an option of python -m" in failing_dry_run(tmp_path, typo)
