import torch

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_transforms import EvalTransform, LabelAwareFlip, TrainTransform

MEAN, STD = [0.5, 0.25, 0.75], [0.5, 0.25, 0.125]


def ramp_clip(t: int = 4, size: int = 16) -> torch.Tensor:
    """uint8 [T, 3, size, size] whose pixels differ across x, y and channel (a flip or crop shows)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    frame = torch.stack([x * 15, y * 15, (x * y) % 256]).to(torch.uint8)
    return frame.expand(t, -1, -1, -1).clone()


def test_augmentation_uses_the_same_parameters_on_every_frame():
    torch.manual_seed(0)
    augment = TrainTransform(12, MEAN, STD, flip_p=0.5)
    for _ in range(10):
        out, _ = augment(ramp_clip(), 5)
        assert out.shape == (4, 3, 12, 12) and out.dtype == torch.float32
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
    augment = TrainTransform(16, MEAN, STD, scale=(1.0, 1.0), jitter=0.0)
    labels = [augment(ramp_clip(), 18)[1] for _ in range(120)]
    assert set(labels) == {18, 19} and 40 < labels.count(19) < 80


def test_eval_transform_normalises_with_the_given_stats():
    clip = torch.full((4, 3, 8, 8), 255, dtype=torch.uint8)
    out = EvalTransform(8, MEAN, STD)(clip)
    expected = (1.0 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(out[:, :, 3, 3], expected.expand(4, 3))


def test_eval_transform_centre_crops_after_resizing():
    out = EvalTransform(8, [0.0] * 3, [1.0] * 3, crop_fraction=0.5)(ramp_clip(size=16))
    # resize 16 -> 16 (8 / 0.5) is the identity; the centre 8x8 crop starts at pixel 4
    assert torch.allclose(out[0, 0, 0, :] * 255, torch.arange(4, 12).float() * 15)


def test_fused_colour_jitter_equals_torchvision_adjustments_on_one_frame():
    from torchvision.transforms.v2 import functional as F

    from whatnext.data.clip_transforms import ColourJitterNormalise

    frame = torch.randint(90, 160, (1, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    out = ColourJitterNormalise(0.3, MEAN, STD)(frame)
    torch.manual_seed(3)
    b, c, s = (1 + 0.3 * (2 * torch.rand(3) - 1)).tolist()  # the same draw
    ref = F.adjust_saturation(F.adjust_contrast(F.adjust_brightness(frame.float() / 255, b), c), s)
    ref = (ref - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert torch.allclose(out, ref, atol=1e-4)


def test_colour_jitter_stays_within_the_normalised_unit_range():
    from whatnext.data.clip_transforms import ColourJitterNormalise

    out = ColourJitterNormalise(0.9, MEAN, STD)(ramp_clip())
    lo, hi = -torch.tensor(MEAN) / torch.tensor(STD), (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert (out >= lo[:, None, None] - 1e-6).all() and (out <= hi[:, None, None] + 1e-6).all()


def test_fast_resized_crop_matches_torchvision_within_one_grey_level():
    from torchvision.transforms.v2 import functional as F

    from whatnext.data.clip_transforms import resized_crop

    clip = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for top, left, height, width, size in [(3, 5, 30, 20, 24), (0, 0, 40, 48, 16), (7, 2, 11, 13, 32)]:
        ref = F.resized_crop(clip, top, left, height, width, [size, size], antialias=True)
        for frames in (clip, clip.contiguous(memory_format=torch.channels_last)):
            out = resized_crop(frames, top, left, height, width, size)
            assert out.shape == ref.shape and (out.int() - ref.int()).abs().max() <= 1


def test_colour_normalise_ignores_the_input_memory_format():
    from whatnext.data.clip_transforms import ColourJitterNormalise

    clip = ramp_clip()
    torch.manual_seed(5)
    planar = ColourJitterNormalise(0.4, MEAN, STD)(clip)
    torch.manual_seed(5)
    channels_last = ColourJitterNormalise(0.4, MEAN, STD)(clip.contiguous(memory_format=torch.channels_last))
    assert torch.equal(planar, channels_last)


def test_train_transform_is_reproducible_for_a_seed():
    clip = torch.randint(0, 256, (4, 3, 30, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)
    first = [TrainTransform(16, MEAN, STD)(clip, 18) for _ in range(3)]
    torch.manual_seed(7)
    second = [TrainTransform(16, MEAN, STD)(clip, 18) for _ in range(3)]
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, second))


def test_train_transform_without_jitter_or_flip_is_the_normalised_torchvision_resized_crop():
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    clip = torch.randint(0, 256, (4, 3, 30, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(11)
    top, left, height, width = v2.RandomResizedCrop.get_params(clip, [0.35, 1.0], [3 / 4, 4 / 3])
    ref = F.resized_crop(clip, top, left, height, width, [16, 16], antialias=True).float() / 255
    ref = (ref - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    torch.manual_seed(11)
    out, label = TrainTransform(16, MEAN, STD, jitter=0.0, flip_p=0.0)(clip, 18)
    assert label == 18 and out.shape == (4, 3, 16, 16)
    assert (out - ref).abs().max() <= 1 / 255 / min(STD) + 1e-5  # at most one grey level of resampling rounding


def test_colour_normalise_without_jitter_is_the_plain_normalisation():
    from whatnext.data.clip_transforms import ColourJitterNormalise

    clip = ramp_clip()
    expected = (clip.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert torch.allclose(ColourJitterNormalise(0.0, MEAN, STD)(clip), expected, atol=1e-5)
