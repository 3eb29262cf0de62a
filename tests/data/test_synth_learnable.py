"""A small CNN trained for a few seconds on generated clips beats the majority class clearly, while the
pretending pairs stay confused (their 4-frame prefixes are identically distributed)."""

import numpy as np
import pandas as pd
import torch
from torch import nn

from whatnext.data.class_table import load_class_table
from whatnext.data.synth import encode_jpeg, render_clip
from whatnext.data.synth_programs import class_programs
from whatnext.data.synth_render import sample_scene
from whatnext.data.zip_dataset import ClipDataset, decode_jpeg

TABLE = load_class_table()
STEPS = 150
HELD_OUT_PER_CLASS = 24


def load_split(data_dir, split):
    ds = ClipDataset(data_dir, split)
    return torch.stack([ds.read_frames(i) for i in range(len(ds))]), torch.as_tensor(ds.labels), ds.clip_ids


def fresh_clips(label: int, n: int, size: int) -> torch.Tensor:
    """n new clips of one class (scenes never used by the data dir), JPEG round-tripped like the zip."""
    program = class_programs(TABLE)[label]
    clips = []
    for i in range(n):
        frames = render_clip(program, sample_scene(np.random.default_rng([99, label, i]), size))
        clips.append(torch.stack([decode_jpeg(encode_jpeg(f, 90)) for f in frames]))
    return torch.stack(clips)


def pair_auc(model, prep, a: int, b: int, size: int) -> float:
    """AUC of p(a) / (p(a) + p(b)) separating fresh clips of a from fresh clips of b (0.5 = confused)."""
    with torch.no_grad():
        pa, pb = (model(prep(fresh_clips(c, HELD_OUT_PER_CLASS, size))).softmax(-1) for c in (a, b))
    score_a, score_b = pa[:, a] / (pa[:, a] + pa[:, b]), pb[:, a] / (pb[:, a] + pb[:, b])
    wins = (score_a[:, None] > score_b[None]).float() + 0.5 * (score_a[:, None] == score_b[None]).float()
    return wins.mean().item()


def test_small_cnn_beats_majority_and_pretending_pairs_stay_confused(tiny_data_dir):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_train, y_train, _ = load_split(tiny_data_dir, "train")
    x_val, y_val, _ = load_split(tiny_data_dir, "val")
    x_test, _, test_ids = load_split(tiny_data_dir, "test")
    truth = pd.read_csv(tiny_data_dir / "synth_test_labels.csv", dtype=str).set_index("video_id")["label"].astype(int)
    x_eval, y_eval = torch.cat([x_val, x_test]), torch.cat([y_val, torch.tensor(truth.loc[test_ids].to_numpy())])
    size = x_train.shape[-1]
    mean = x_train.float().mean((0, 1, 3, 4), keepdim=True) / 255
    std = x_train.float().std((0, 1, 3, 4), keepdim=True) / 255

    def prep(clips):  # uint8 [B, 4, 3, H, W] -> frames stacked as channels [B, 12, H, W]
        return ((clips.float() / 255 - mean) / std).flatten(1, 2)

    model = nn.Sequential(
        nn.Conv2d(12, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.BatchNorm2d(48), nn.ReLU(),
        nn.Conv2d(48, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, TABLE.num_classes),
    )
    optimiser = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-4)
    mirror = torch.as_tensor(TABLE.mirror_permutation())
    for _ in range(STEPS):
        idx = torch.randint(len(x_train), (64,))
        flip = torch.rand(64) < 0.5  # label-aware flip
        clips = torch.where(flip[:, None, None, None, None], x_train[idx].flip(-1), x_train[idx])
        labels = torch.where(flip, mirror[y_train[idx]], y_train[idx])
        loss = nn.functional.cross_entropy(model(prep(clips)), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(prep(x_eval)).argmax(-1) == y_eval).float().mean().item()
    majority = (y_eval == torch.bincount(y_train).argmax()).float().mean().item()
    pretend = [pair_auc(model, prep, p, r, size) for p, r in TABLE.pretend_pairs]
    reverse = [pair_auc(model, prep, a, b, size) for a, b in TABLE.reverse_pairs if a != b]
    print(f"\nheld-out accuracy {accuracy:.3f} vs majority class {majority:.3f} ({len(y_eval)} clips, {STEPS} steps)")
    print("pretending-pair AUC", [round(a, 2) for a in pretend], "reverse-pair AUC", [round(a, 2) for a in reverse])
    assert accuracy > 3 * majority
    assert abs(np.mean(pretend) - 0.5) < 0.12
    assert np.mean(reverse) > np.mean(pretend) + 0.2
