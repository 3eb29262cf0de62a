import torch

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_transforms import LabelAwareFlip, TrainTransform


def ramp_clip(t: int = 4, size: int = 16) -> torch.Tensor:
    """uint8 [T, 3, size, size] whose pixels differ across x, y and channel (a flip or crop shows)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    frame = torch.stack([x * 15, y * 15, (x * y) % 256]).to(torch.uint8)
    return frame.expand(t, -1, -1, -1).clone()


def test_augmentation_uses_the_same_parameters_on_every_frame():
    torch.manual_seed(0)
    augment = TrainTransform(12, flip_p=0.5)
    for _ in range(10):
        out, _ = augment(ramp_clip(), 5)
        assert out.shape == (4, 3, 12, 12) and out.dtype == torch.uint8
        assert all(torch.equal(out[0], out[k]) for k in range(1, 4))


def test_flip_swaps_the_mirror_pair_from_the_class_table():
    perm = load_class_table().mirror_permutation()
    flip = LabelAwareFlip(perm, p=1.0)
    clip = ramp_clip()
    flipped, label = flip(clip, 18)
    assert label == 19 and torch.equal(flipped, clip.flip(-1))
    assert flip(clip, 19)[1] == 18
    assert [flip(clip, c)[1] for c in (0, 5, 30)] == [0, 5, 30]


def test_flip_keeps_the_test_label():
    assert LabelAwareFlip(load_class_table().mirror_permutation(), p=1.0)(ramp_clip(), -1)[1] == -1


def test_no_flip_keeps_label_and_pixels():
    clip = ramp_clip()
    out, label = LabelAwareFlip(load_class_table().mirror_permutation(), p=0.0)(clip, 18)
    assert label == 18 and torch.equal(out, clip)


def test_train_transform_flips_about_half_the_time_and_swaps_labels_each_time():
    torch.manual_seed(1)
    augment = TrainTransform(16, scale=(1.0, 1.0))
    labels = [augment(ramp_clip(), 18)[1] for _ in range(120)]
    assert set(labels) == {18, 19} and 40 < labels.count(19) < 80


def test_fast_resized_crop_matches_torchvision_within_one_grey_level():
    from torchvision.transforms.v2 import functional as F

    from whatnext.data.clip_transforms import resized_crop

    clip = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for top, left, height, width, size in [(3, 5, 30, 20, 24), (0, 0, 40, 48, 16), (7, 2, 11, 13, 32)]:
        ref = F.resized_crop(clip, top, left, height, width, [size, size], antialias=True)
        for frames in (clip, clip.contiguous(memory_format=torch.channels_last)):
            out = resized_crop(frames, top, left, height, width, size)
            assert out.shape == ref.shape and (out.int() - ref.int()).abs().max() <= 1


def test_train_transform_is_reproducible_for_a_seed():
    clip = torch.randint(0, 256, (4, 3, 30, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)
    first = [TrainTransform(16)(clip, 18) for _ in range(3)]
    torch.manual_seed(7)
    second = [TrainTransform(16)(clip, 18) for _ in range(3)]
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, second))


def test_train_transform_without_flip_is_the_torchvision_resized_crop_of_its_box():
    from torchvision.transforms.v2 import functional as F

    from whatnext.data.clip_transforms import random_resized_box

    clip = torch.randint(0, 256, (4, 3, 30, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(11)
    top, left, height, width = random_resized_box(30, 40, [0.35, 1.0], [3 / 4, 4 / 3])
    ref = F.resized_crop(clip, top, left, height, width, [16, 16], antialias=True)
    torch.manual_seed(11)
    out, label = TrainTransform(16, flip_p=0.0)(clip, 18)
    assert label == 18 and out.shape == (4, 3, 16, 16)
    assert (out.int() - ref.int()).abs().max() <= 1  # at most one grey level of resampling rounding


def test_random_boxes_fit_and_follow_the_area_and_ratio_ranges():
    from whatnext.data.clip_transforms import random_resized_box

    torch.manual_seed(0)
    boxes = [random_resized_box(60, 80, [0.2, 0.6], [0.5, 2.0]) for _ in range(400)]
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.18 <= h * w / 4800 <= 0.62 and 0.45 <= w / h <= 2.2  # rounding to whole pixels
    lefts = [left for _, left, _, w in boxes if w <= 40]
    assert min(lefts) <= 4 and max(lefts) >= 36  # positions spread over the free range


def test_random_box_falls_back_to_a_centre_crop_within_the_ratio():
    from whatnext.data.clip_transforms import random_resized_box

    torch.manual_seed(0)
    # a 10 x 100 strip cannot hold any crop of ratio <= 4/3 and area >= 0.9: centre crop 10 x 13
    assert random_resized_box(10, 100, [0.9, 1.0], [3 / 4, 4 / 3]) == (0, 43, 10, 13)
