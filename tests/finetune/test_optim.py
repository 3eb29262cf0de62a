"""Layer-wise learning-rate decay groups on a hand-made module."""

import pytest
import torch.nn as nn

from whatnext.finetune.optim import layer_decay_groups, parameter_depth


class TinyViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.patch_embed = nn.Linear(4, 4)
        self.encoder.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.encoder.temporal = nn.ModuleDict({"2": nn.Linear(4, 4)})
        self.head = nn.Linear(4, 2)


def test_depths_run_from_embedding_through_blocks_to_head():
    assert parameter_depth("encoder.patch_embed.weight", 3, "encoder.") == 0
    assert parameter_depth("encoder.blocks.0.weight", 3, "encoder.") == 1
    assert parameter_depth("encoder.blocks.2.attn.qkv.weight", 3, "encoder.") == 3
    assert parameter_depth("encoder.temporal.2.attn.qkv.weight", 3, "encoder.") == 3
    assert parameter_depth("head.weight", 3, "encoder.") == 4


def test_learning_rate_decays_geometrically_with_distance_from_head():
    model = TinyViT()
    lr_of = {id(p): g["lr"] for g in layer_decay_groups(model, 1.0, 0.05, 0.5) for p in g["params"]}
    assert lr_of[id(model.head.weight)] == 1.0
    assert lr_of[id(model.encoder.blocks[2].weight)] == 0.5
    assert lr_of[id(model.encoder.temporal["2"].weight)] == 0.5
    assert lr_of[id(model.encoder.blocks[0].weight)] == 0.125
    assert lr_of[id(model.encoder.patch_embed.weight)] == 0.0625


def test_decay_of_one_gives_every_parameter_the_base_rate():
    assert all(g["lr"] == pytest.approx(3e-4) for g in layer_decay_groups(TinyViT(), 3e-4, 0.05, 1.0))


def test_biases_get_no_weight_decay_and_matrices_do():
    model = TinyViT()
    decay_of = {id(p): g["weight_decay"] for g in layer_decay_groups(model, 1.0, 0.05, 1.0) for p in g["params"]}
    assert decay_of[id(model.head.weight)] == 0.05
    assert decay_of[id(model.head.bias)] == 0.0


def test_every_trainable_parameter_is_in_exactly_one_group():
    model = TinyViT()
    model.encoder.patch_embed.weight.requires_grad_(False)
    grouped = [id(p) for g in layer_decay_groups(model, 1.0, 0.05, 0.75) for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)


def test_first_group_is_the_head_at_the_base_rate():
    """The trainer reports the first group's rate as the run's learning rate."""
    assert layer_decay_groups(TinyViT(), 2e-3, 0.05, 0.5)[0]["lr"] == 2e-3
