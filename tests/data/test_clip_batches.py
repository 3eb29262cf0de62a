"""Collating decoded clips into training batches: labels, ids, padding and the frame sizes that undo it."""

import torch

from whatnext.data.clip_batches import collate_clips


def clip(height: int, width: int, value: int) -> torch.Tensor:
    return torch.full((4, 3, height, width), value, dtype=torch.uint8)


def test_equal_clips_stack_with_labels_ids_and_sizes():
    frames, labels, ids, sizes = collate_clips([(clip(8, 10, 1), 18, "a"), (clip(8, 10, 2), -1, "b")])
    assert frames.shape == (2, 4, 3, 8, 10) and frames.dtype == torch.uint8
    assert frames[0].unique().tolist() == [1] and frames[1].unique().tolist() == [2]
    assert labels.dtype == torch.long and labels.tolist() == [18, -1]
    assert ids == ["a", "b"] and sizes == [(8, 10), (8, 10)]


def test_clips_of_different_sizes_are_padded_with_zeros_at_bottom_and_right():
    frames, _, _, sizes = collate_clips([(clip(6, 10, 7), 0, "a"), (clip(8, 4, 9), 1, "b")])
    assert frames.shape == (2, 4, 3, 8, 10) and sizes == [(6, 10), (8, 4)]
    assert frames[0, ..., :6, :].unique().tolist() == [7] and frames[0, ..., 6:, :].unique().tolist() == [0]
    assert frames[1, ..., :, :4].unique().tolist() == [9] and frames[1, ..., :, 4:].unique().tolist() == [0]


def test_batch_is_channels_last_and_keeps_each_pixel():
    source = torch.randint(0, 256, (4, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    frames, *_ = collate_clips([(source, 3, "a")])
    assert frames.stride(2) == 1  # channels innermost: [B, T, H, W, C] memory
    assert torch.equal(frames[0], source)


def test_in_a_loader_worker_the_batch_is_built_in_shared_memory():
    """Built there, it crosses to the training process without the extra copy into shared memory."""
    from torch.utils.data import DataLoader

    def built_shared(items):
        frames, _, _, sizes = collate_clips(items)
        return frames.is_shared(), sizes, frames[0, ..., :, 6:].unique().tolist()

    clips = [(torch.full((4, 3, 6, 8 if i % 2 else 6), i, dtype=torch.uint8), i, str(i)) for i in range(4)]
    in_worker = next(iter(DataLoader(clips, batch_size=4, collate_fn=built_shared, num_workers=1)))
    assert in_worker == (True, [(6, 6), (6, 8), (6, 6), (6, 8)], [0])  # padding zeroed in shared memory too
    assert not collate_clips(clips)[0].is_shared()  # in the training process itself: ordinary memory


def test_lists_of_frames_collate_like_the_stacked_clips():
    clips = [torch.randint(0, 256, (4, 3, 5, 6 + i), dtype=torch.uint8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    stacked = collate_clips([(clip, i, str(i)) for i, clip in enumerate(clips)])
    listed = collate_clips([(list(clip.unbind(0)), i, str(i)) for i, clip in enumerate(clips)])
    assert torch.equal(stacked[0], listed[0]) and stacked[3] == listed[3] == [(5, 6), (5, 7), (5, 8)]
