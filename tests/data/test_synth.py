import hashlib
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from whatnext.data.class_table import class_counts, load_class_table
from whatnext.data.synth import generate, main, render_clip
from whatnext.data.synth_presets import PRESETS
from whatnext.data.synth_programs import CLIP_TIMES, PREFIX_END, class_programs
from whatnext.data.synth_render import sample_scene, with_params

TABLE = load_class_table()
PROGRAMS = class_programs(TABLE)
every_preset = pytest.mark.parametrize("preset", list(PRESETS))


def scenes(n: int, size: int = 32, seed: int = 0, preset: str = "classic"):
    return [sample_scene(np.random.default_rng([seed, i]), size, preset) for i in range(n)]


def test_scale_one_gives_the_challenge_totals():
    counts = class_counts(TABLE, 1.0)
    assert [sum(counts[s]) for s in ("train", "val", "test")] == [44_993, 6_745, 6_912]
    assert counts["train"] == list(TABLE.train_clips)


def test_small_scale_keeps_every_populated_class_and_the_empty_one_empty():
    counts = class_counts(TABLE, 0.001)
    populated = [c for c in range(33) if c not in TABLE.empty_classes]
    assert all(counts["train"][c] >= 1 and counts["val"][c] >= 1 for c in populated)
    assert counts["train"][27] == counts["val"][27] == counts["test"][27] == 0
    assert sum(counts["test"]) == round(6912 * 0.001)
    assert counts["train"][9] == round(3170 * 0.001)


def test_generated_dir_has_the_challenge_format(tiny_data_dir):
    train = pd.read_csv(tiny_data_dir / "train.csv", dtype=str)
    test = pd.read_csv(tiny_data_dir / "test.csv", dtype=str)
    assert list(train.columns) == ["video_id", "label"] and list(test.columns) == ["video_id"]
    names = zipfile.ZipFile(tiny_data_dir / "frames.zip").namelist()
    row = train.iloc[0]
    folder = f"train/{TABLE.names[int(row.label)]}/video_{row.video_id}"
    assert [f"{folder}/frame_{k}.jpg" for k in range(4)] == [n for n in names if n.startswith(folder + "/")]
    assert f"test/video_{test.video_id[0]}/frame_3.jpg" in names
    ids = pd.concat([pd.read_csv(tiny_data_dir / f"{s}.csv", dtype=str).video_id for s in ("train", "val", "test")])
    assert ids.is_unique and len(names) == 4 * len(ids)
    assert set(train.label.astype(int)) == set(range(33)) - {27}


def test_frames_are_square_jpegs_of_the_requested_size(tiny_data_dir):
    archive = zipfile.ZipFile(tiny_data_dir / "frames.zip")
    image = Image.open(io.BytesIO(archive.read(archive.namelist()[0])))
    assert image.format == "JPEG" and image.size == (32, 32) and image.mode == "RGB"


@pytest.mark.parametrize("preset", ["classic", "murky"])
def test_same_seed_gives_bitwise_identical_files_and_another_seed_does_not(tmp_path, preset):
    def digest(out):
        generate(out, scale=0.001, size=16, seed=3 if out.name != "c" else 4, progress=False, preset=preset)
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}

    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b and a["frames.zip"] != c["frames.zip"]


def test_cli_writes_the_data_dir_and_reports_counts(tmp_path):
    result = CliRunner().invoke(main, ["--out", str(tmp_path), "--scale", "0.001", "--size", "16", "--seed", "1"])
    assert result.exit_code == 0, result.output
    counts = class_counts(TABLE, 0.001)
    assert f"train {sum(counts['train'])} / val {sum(counts['val'])} / test 7 clips" in result.output
    assert {p.name for p in tmp_path.iterdir()} >= {"frames.zip", "train.csv", "val.csv", "test.csv"}


def test_cli_rejects_a_non_positive_scale(tmp_path):
    result = CliRunner().invoke(main, ["--out", str(tmp_path), "--scale", "0", "--size", "16"])
    assert result.exit_code == 2 and "scale must be positive" in result.output


def test_a_clip_is_the_first_40_percent_of_the_action():
    assert CLIP_TIMES == pytest.approx((0.0, 0.4 / 3, 0.8 / 3, 0.4)) and PREFIX_END == 0.4


@every_preset
def test_mirror_partner_is_the_exact_mirror_image(preset):
    for a, b in TABLE.mirror_pairs:
        for scene in scenes(5, preset=preset):
            assert np.array_equal(render_clip(PROGRAMS[a], scene)[..., ::-1, :], render_clip(PROGRAMS[b], scene))


def test_flipped_mirror_class_moves_like_its_partner():
    """Distribution check on the generated pixels: horizontal motion of a flipped 18 matches 19's."""

    def drift(clip):  # x-centroid of |frame - first frame|, last frame minus second
        diff = np.abs(clip.astype(float) - clip[:1]).sum(-1)
        xs = np.arange(clip.shape[2])
        cx = (diff * xs).sum((1, 2)) / np.maximum(diff.sum((1, 2)), 1e-9)
        return cx[3] - cx[1]

    (a, b), = TABLE.mirror_pairs
    sample = scenes(40, seed=1)
    plain = np.array([drift(render_clip(PROGRAMS[a], s)) for s in sample])
    flipped = np.array([drift(render_clip(PROGRAMS[a], s)[:, :, ::-1]) for s in sample])
    partner = np.array([drift(render_clip(PROGRAMS[b], s)) for s in scenes(40, seed=2)])
    assert plain.mean() > 1.0 and flipped.mean() < -1.0
    assert abs(flipped.mean() - partner.mean()) < 0.25 * abs(plain.mean())


@every_preset
def test_reverse_partner_prefix_is_the_reversed_end_of_the_action(preset):
    """Clip of B at t = 0 .. 0.4 equals A at t = 1 .. 0.6: B's 4 frames, reversed, are the last 40% of A
    (camera motion included)."""
    end_of_action = tuple(1.0 - t for t in reversed(CLIP_TIMES))  # 0.6, 0.733, 0.867, 1.0
    for a, b in TABLE.reverse_pairs:
        if a == b:
            continue
        for scene in scenes(3, preset=preset):
            assert np.array_equal(render_clip(PROGRAMS[b], scene)[::-1], render_clip(PROGRAMS[a], scene, end_of_action))


@every_preset
def test_self_reverse_class_reversed_is_the_same_class_from_the_other_orientation(preset):
    selfs = [a for a, b in TABLE.reverse_pairs if a == b]
    assert selfs
    reversed_times = tuple(1.0 - t for t in CLIP_TIMES)
    for c in selfs:
        for scene in scenes(3, preset=preset):
            other = with_params(scene, orient=-scene.params.orient)
            assert np.array_equal(render_clip(PROGRAMS[c], scene, reversed_times), render_clip(PROGRAMS[c], other))


@every_preset
def test_pretending_shares_the_visible_beginning_but_not_the_end(preset):
    for pretend, real in TABLE.pretend_pairs:
        for scene in scenes(3, preset=preset):
            assert np.array_equal(render_clip(PROGRAMS[pretend], scene), render_clip(PROGRAMS[real], scene))
            end = (1.0,)
            assert not np.array_equal(render_clip(PROGRAMS[pretend], scene, end), render_clip(PROGRAMS[real], scene, end))


@every_preset
def test_every_populated_class_shows_motion_within_its_clip(preset):
    for c, program in PROGRAMS.items():
        moving = [np.abs(np.diff(render_clip(program, s).astype(int), axis=0)).sum() > 0 for s in scenes(3, preset=preset)]
        assert all(moving), f"class {c} is static in its first 40%"


def test_classes_differ_from_each_other():
    scene = scenes(1)[0]
    clips = {c: render_clip(p, scene).tobytes() for c, p in PROGRAMS.items()}
    pretend = {c for c, _ in TABLE.pretend_pairs}
    assert len({v for c, v in clips.items() if c not in pretend}) == len(PROGRAMS) - len(pretend)


def test_objects_and_backgrounds_are_textured_not_flat():
    for scene in scenes(10):
        assert scene.background.std(axis=(0, 1)).max() > 3.0
        thing = np.asarray(scene.sprites["thing"], dtype=float)
        inside = thing[..., 3] == 255
        assert thing[inside][:, :3].std(axis=0).max() > 10.0
        other = np.asarray(scene.sprites["other"], dtype=float)[4:-4, 4:-4, :3]
        assert other.reshape(-1, 3).std(axis=0).max() > 10.0


def test_textures_come_from_scikit_learn_photographs_and_digits(monkeypatch):
    from sklearn.datasets import load_digits, load_sample_images

    from whatnext.data import synth_render

    photos = synth_render._photos()
    assert all(np.array_equal(np.asarray(p), q) for p, q in zip(photos, load_sample_images().images, strict=True))
    assert np.array_equal(synth_render._digits(), load_digits().images / 16.0)
    flat = (Image.new("RGB", (640, 427), (90, 90, 90)),)
    monkeypatch.setattr(synth_render, "_photos", lambda: flat)
    scene = sample_scene(np.random.default_rng(0), 32)
    assert scene.background.std() == 0  # with flat photos the background goes flat: it is cut from them
