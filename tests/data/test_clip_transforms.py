import torch

from whatnext.data.class_table import load_class_table
from whatnext.data.clip_batches import collate_clips
from whatnext.data.clip_normalise import ClipNormaliser
from whatnext.data.clip_transforms import ClipAugmenter, random_resized_box, resized_crop

TO_UNIT = ClipNormaliser([0.0] * 3, [1.0] * 3)  # x / 255: the augmenter's geometry, visible as 0..1 floats


def ramp_clip(t: int = 4, size: int = 16) -> torch.Tensor:
    """uint8 [T, 3, size, size] whose pixels differ across x, y and channel (a flip or crop shows)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    frame = torch.stack([x * 15, y * 15, (x * y) % 256]).to(torch.uint8)
    return frame.expand(t, -1, -1, -1).clone()


def batch_of(clips, labels):
    return collate_clips([(clip, label, str(i)) for i, (clip, label) in enumerate(zip(clips, labels))])


def augment(augmenter, clips, labels):
    frames, labels, _, sizes = batch_of(clips, labels)
    return augmenter(frames, labels, sizes)


def test_augmentation_uses_the_same_parameters_on_every_frame():
    torch.manual_seed(0)
    x, _ = augment(ClipAugmenter(12, TO_UNIT, flip_p=0.5), [ramp_clip()] * 10, [5] * 10)
    assert x.shape == (10, 4, 3, 12, 12) and x.dtype == torch.float32
    assert all(torch.equal(x[:, 0], x[:, k]) for k in range(1, 4))
    assert not all(torch.equal(x[0], x[b]) for b in range(1, 10))  # but every clip draws its own


def test_flip_swaps_the_mirror_pair_from_the_class_table_and_mirrors_the_pixels():
    clips, labels = [ramp_clip()] * 6, [18, 19, 0, 5, 30, -1]
    torch.manual_seed(4)
    plain, kept = augment(ClipAugmenter(12, TO_UNIT, flip_p=0.0), clips, labels)
    torch.manual_seed(4)  # same draws: the flip decision does not change the crop boxes
    mirrored, swapped = augment(ClipAugmenter(12, TO_UNIT, flip_p=1.0), clips, labels)
    perm = load_class_table().mirror_permutation()
    assert kept.tolist() == labels
    assert swapped.tolist() == [perm[18], perm[19], 0, 5, 30, -1] == [19, 18, 0, 5, 30, -1]
    assert torch.equal(mirrored, plain.flip(-1))


def test_flips_about_half_the_clips_and_swaps_each_flipped_label():
    torch.manual_seed(1)
    _, labels = augment(ClipAugmenter(8, TO_UNIT, scale=(1.0, 1.0)), [ramp_clip(size=8)] * 120, [18] * 120)
    assert set(labels.tolist()) == {18, 19} and 40 < labels.tolist().count(19) < 80


def test_augmenter_is_reproducible_for_a_seed():
    clips = [torch.randint(0, 256, (4, 3, 30, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    augmenter = ClipAugmenter(16, TO_UNIT, jitter=0.3, views=2)
    torch.manual_seed(7)
    first = augment(augmenter, clips, [18, 2, 19])
    torch.manual_seed(7)
    second = augment(augmenter, clips, [18, 2, 19])
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_without_flip_each_clip_is_the_torchvision_resized_crop_of_its_box():
    from torchvision.transforms.v2 import functional as F

    clips = [torch.randint(0, 256, (4, 3, 30, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    torch.manual_seed(11)
    x, labels = augment(ClipAugmenter(16, TO_UNIT, flip_p=0.0), clips, [18, 18, 18])
    torch.manual_seed(11)
    torch.rand(3)  # the augmenter's flip draws come first
    for clip, out in zip(clips, x):
        top, left, height, width = random_resized_box(30, 40, [0.35, 1.0], [3 / 4, 4 / 3])
        ref = F.resized_crop(clip, top, left, height, width, [16, 16], antialias=True)
        assert (out * 255 - ref.float()).abs().max() <= 1.0001  # at most one grey level of resampling rounding
    assert labels.tolist() == [18, 18, 18]


def test_clips_of_different_sizes_in_one_batch_never_see_the_padding():
    """Full-frame boxes (area 1): each output is its own whole clip resized, whatever the batch's padding."""
    wide, square = ramp_clip(size=40)[..., 5:35, :], ramp_clip(size=24)  # 30 x 40 (ratio 4/3) and 24 x 24
    torch.manual_seed(0)
    x, _ = augment(ClipAugmenter(16, TO_UNIT, scale=(1.0, 1.0), flip_p=0.0), [wide, square], [1, 2])
    for clip, out in zip([wide, square], x):
        assert torch.allclose(out * 255, resized_crop(clip, 0, 0, *clip.shape[-2:], 16).float(), atol=1e-3)


def test_two_views_share_the_flip_and_label_and_differ_in_crop():
    torch.manual_seed(0)
    clip = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x, labels = augment(ClipAugmenter(16, TO_UNIT, views=2), [clip] * 8, [18] * 8)
    assert x.shape == (8, 2, 4, 3, 16, 16) and not torch.equal(x[:, 0], x[:, 1])
    assert set(labels.tolist()) == {18, 19}


def test_fast_resized_crop_matches_torchvision_within_one_grey_level():
    from torchvision.transforms.v2 import functional as F

    clip = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for top, left, height, width, size in [(3, 5, 30, 20, 24), (0, 0, 40, 48, 16), (7, 2, 11, 13, 32)]:
        ref = F.resized_crop(clip, top, left, height, width, [size, size], antialias=True)
        for frames in (clip, clip.contiguous(memory_format=torch.channels_last)):
            out = resized_crop(frames, top, left, height, width, size)
            assert out.shape == ref.shape and (out.int() - ref.int()).abs().max() <= 1


def test_random_boxes_fit_and_follow_the_area_and_ratio_ranges():
    torch.manual_seed(0)
    boxes = [random_resized_box(60, 80, [0.2, 0.6], [0.5, 2.0]) for _ in range(400)]
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
        assert 0.18 <= h * w / 4800 <= 0.62 and 0.45 <= w / h <= 2.2  # rounding to whole pixels
    lefts = [left for _, left, _, w in boxes if w <= 40]
    assert min(lefts) <= 4 and max(lefts) >= 36  # positions spread over the free range


def test_random_box_falls_back_to_a_centre_crop_within_the_ratio():
    torch.manual_seed(0)
    # a 10 x 100 strip cannot hold any crop of ratio <= 4/3 and area >= 0.9: centre crop 10 x 13
    assert random_resized_box(10, 100, [0.9, 1.0], [3 / 4, 4 / 3]) == (0, 43, 10, 13)
