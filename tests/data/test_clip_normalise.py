"""Batch colour jitter + normalisation of uint8 clips (the step after the loaders)."""

import pytest
import torch

from whatnext.data.clip_normalise import ClipNormaliser

MEAN, STD = [0.5, 0.25, 0.75], [0.5, 0.25, 0.125]


def random_clips(*lead: int, low: int = 0, high: int = 256, size: int = 8, frames: int = 4, seed: int = 0) -> torch.Tensor:
    shape = (*lead, frames, 3, size, size)
    return torch.randint(low, high, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def per_channel(values) -> torch.Tensor:
    return torch.as_tensor(values)[:, None, None]


def test_without_jitter_it_is_the_plain_normalisation():
    clips = random_clips(2)
    expected = (clips.float() / 255 - per_channel(MEAN)) / per_channel(STD)
    out = ClipNormaliser(MEAN, STD)(clips)
    assert out.dtype == torch.float32 and out.shape == clips.shape
    assert torch.allclose(out, expected, atol=1e-5)


def test_jitter_equals_torchvision_adjustments_clip_by_clip():
    """One-frame clips: torchvision's contrast uses each frame's mean grey, ours the clip's (one per clip)."""
    from torchvision.transforms.v2 import functional as F

    clips = random_clips(3, low=90, high=160, frames=1)  # mid-grey: no intermediate clamping in torchvision
    torch.manual_seed(3)
    out = ClipNormaliser(MEAN, STD)(clips, jitter=0.3)
    torch.manual_seed(3)
    factors = 1 + 0.3 * (2 * torch.rand(3, 3) - 1)  # the same draw: (b, c, s) per clip
    for clip, got, (b, c, s) in zip(clips, out, factors.tolist()):
        ref = F.adjust_saturation(F.adjust_contrast(F.adjust_brightness(clip.float() / 255, b), c), s)
        ref = (ref - per_channel(MEAN)) / per_channel(STD)
        assert torch.allclose(got, ref, atol=5e-4)  # well under one grey level (1/255/0.125 = 0.03)


def test_frames_of_a_clip_share_one_draw_and_clips_get_their_own():
    clip = random_clips(seed=1)
    batch = torch.stack([clip, clip])
    batch[:, 1:] = batch[:, :1]  # every frame equal
    torch.manual_seed(0)
    out = ClipNormaliser(MEAN, STD)(batch, jitter=0.5)
    assert all(torch.equal(out[0, 0], out[0, k]) for k in range(1, 4))
    assert not torch.allclose(out[0], out[1])


def test_leading_dims_are_independent_clips():
    views = random_clips(2, 2, seed=2)  # [B, views, T, C, H, W]
    torch.manual_seed(4)
    nested = ClipNormaliser(MEAN, STD)(views, jitter=0.4)
    torch.manual_seed(4)
    flat = ClipNormaliser(MEAN, STD)(views.flatten(0, 1), jitter=0.4)
    assert nested.shape == views.shape and torch.equal(nested.flatten(0, 1), flat)


def test_jittered_values_stay_within_the_normalised_unit_range():
    out = ClipNormaliser(MEAN, STD)(random_clips(6), jitter=0.9)
    lo, hi = -torch.tensor(MEAN) / torch.tensor(STD), (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert (out >= per_channel(lo) - 1e-6).all() and (out <= per_channel(hi) + 1e-6).all()


def test_same_seed_same_output():
    clips = random_clips(4)
    torch.manual_seed(9)
    first = ClipNormaliser(MEAN, STD)(clips, jitter=0.3)
    torch.manual_seed(9)
    assert torch.equal(first, ClipNormaliser(MEAN, STD)(clips, jitter=0.3))


def test_float_input_in_0_255_gives_what_the_same_uint8_clips_give():
    clips = random_clips(2)
    torch.manual_seed(3)
    from_uint8 = ClipNormaliser(MEAN, STD)(clips, jitter=0.4)
    torch.manual_seed(3)
    from_float = ClipNormaliser(MEAN, STD)(clips.float(), jitter=0.4)
    assert torch.allclose(from_float, from_uint8, atol=1e-6)


def test_integer_input_other_than_uint8_is_refused():
    with pytest.raises(ValueError, match="uint8 or float"):
        ClipNormaliser(MEAN, STD)(torch.zeros(1, 4, 3, 8, 8, dtype=torch.int32))


def test_reads_the_stats_file_and_names_a_bad_one(tmp_path):
    good = tmp_path / "norm_stats.json"
    good.write_text('{"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}')
    out = ClipNormaliser.from_stats_file(good)(torch.full((1, 4, 3, 2, 2), 255, dtype=torch.uint8))
    assert torch.allclose(out, torch.full_like(out, 2.0))
    bad = tmp_path / "broken.json"
    bad.write_text('{"mean": [0.5]}')
    with pytest.raises(Exception, match="broken.json"):
        ClipNormaliser.from_stats_file(bad)


@pytest.mark.parametrize("jitter", [0.0, 0.4])
def test_float_input_is_left_as_it_was_and_the_output_is_contiguous(jitter):
    clips = random_clips(2).float().contiguous(memory_format=torch.channels_last_3d)
    before = clips.clone()
    out = ClipNormaliser(MEAN, STD)(clips, jitter=jitter)
    assert torch.equal(clips, before) and out.is_contiguous() and out.data_ptr() != clips.data_ptr()
