"""The presets of the generated dataset differ measurably, the held-out one is marked, label noise and
frame size follow the preset, and the CLI and generator take a preset by name."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from whatnext.data.class_table import load_class_table
from whatnext.data.synth import generate, main, noisy_labels, plan_splits, render_clip
from whatnext.data.synth_presets import DEFAULT_PRESET, HELD_OUT, PRESETS, TUNING_PRESETS, get_look
from whatnext.data.synth_programs import CLIP_TIMES, class_programs
from whatnext.data.synth_render import render_frame, sample_scene

TABLE = load_class_table()
PROGRAMS = class_programs(TABLE)
MOVING_DOWN = TABLE.names.index("Moving something down")  # one object, nothing else in the action


def pixel_statistics(preset: str, clips: int = 12) -> dict[str, float]:
    """Per preset, at its native size, over ``clips`` scenes of "Moving something down":

    object_area: fraction of the frame the moving object covers (pixels that differ from the scene
    rendered without it); object_contrast: mean |frame - scene| on those pixels (grey levels);
    camera_motion: mean |scene at t=0.4 - scene at t=0| (grey levels; 0 for a still camera);
    background_contrast: std of the scene's grey levels; position_spread: std over clips of the moving
    object's centre (frame fractions, mean of x and y): how little where things are says about the class.
    """
    look = get_look(preset)
    area, contrast, motion, background, centres = [], [], [], [], []
    for i in range(clips):
        scene = sample_scene(np.random.default_rng([7, i]), look.size, look)
        frame = render_clip(PROGRAMS[MOVING_DOWN], scene, (0.2,))[0].astype(float)
        empty = render_frame([], scene, scene.flip_coin, 0.2).astype(float)
        changed = np.abs(frame - empty).max(axis=-1) > 8
        area.append(changed.mean())
        ys, xs = np.nonzero(changed)
        centres.append((xs.mean() / look.size, ys.mean() / look.size))
        contrast.append(np.abs(frame - empty).mean(axis=-1)[changed].mean())
        start, end = (render_frame([], scene, False, t).astype(float) for t in (CLIP_TIMES[0], CLIP_TIMES[-1]))
        motion.append(np.abs(end - start).mean())
        background.append(empty.mean(axis=-1).std())
    return {
        "object_area": float(np.mean(area)),
        "object_contrast": float(np.mean(contrast)),
        "camera_motion": float(np.mean(motion)),
        "background_contrast": float(np.mean(background)),
        "position_spread": float(np.std(centres, axis=0).mean()),
    }


@pytest.fixture(scope="module")
def statistics() -> dict[str, dict[str, float]]:
    return {name: pixel_statistics(name) for name in PRESETS}


def test_there_are_at_least_four_presets_and_classic_is_the_default():
    assert len(PRESETS) >= 4 and DEFAULT_PRESET == "classic"
    sizes = {look.size for look in PRESETS.values()}
    assert min(sizes) == 64 and max(sizes) >= 112


def test_every_pair_of_presets_differs_by_a_quarter_in_some_pixel_statistic(statistics):
    names = list(PRESETS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ratios = [
                (max(statistics[a][k], statistics[b][k]) + 1e-3) / (min(statistics[a][k], statistics[b][k]) + 1e-3)
                for k in statistics[a]
            ]
            assert max(ratios) > 1.25, (a, b, statistics[a], statistics[b])


def test_the_hard_presets_have_smaller_fainter_objects_and_a_moving_camera(statistics):
    classic = statistics["classic"]
    assert classic["camera_motion"] == 0.0
    for hard in ("cluttered", HELD_OUT):
        assert statistics[hard]["object_area"] < 0.5 * classic["object_area"], statistics[hard]
        assert statistics[hard]["object_contrast"] < 0.9 * classic["object_contrast"], statistics[hard]
        assert statistics[hard]["camera_motion"] > 2.0, statistics[hard]
    assert statistics[HELD_OUT]["object_contrast"] < 0.75 * classic["object_contrast"]
    assert statistics["handheld"]["camera_motion"] > 2.0


def test_every_preset_but_classic_moves_the_action_about_the_frame(statistics):
    for name in PRESETS:
        if name != "classic":
            assert statistics[name]["position_spread"] > 1.5 * statistics["classic"]["position_spread"], name


def test_the_held_out_preset_is_marked_and_its_scene_source_is_its_own():
    assert HELD_OUT in PRESETS and HELD_OUT not in TUNING_PRESETS
    assert set(TUNING_PRESETS) | {HELD_OUT} == set(PRESETS)
    held_out = PRESETS[HELD_OUT]
    assert all(PRESETS[name].background != held_out.background for name in TUNING_PRESETS)


def test_label_noise_replaces_that_fraction_of_train_and_val_labels_never_test_or_empty_classes():
    plans = plan_splits(TABLE, scale=0.2, seed=0, label_noise=0.1)
    for plan in plans:
        labels, annotated = np.asarray(plan.labels), np.asarray(plan.annotated)
        changed = (labels != annotated).mean()
        if plan.name == "test":
            assert changed == 0.0
        else:
            assert 0.08 < changed < 0.12, (plan.name, changed)
        assert not set(annotated) & set(TABLE.empty_classes)


def test_noisy_labels_never_keep_the_label_they_replace():
    populated = [0, 1, 2, 5]
    labels = np.array([0, 1, 2, 5] * 50)
    noisy = noisy_labels(labels, populated, rate=0.999999, rng=np.random.default_rng(0))
    assert (noisy != labels).all() and set(noisy) <= set(populated)


def test_without_label_noise_the_csv_labels_are_the_truth():
    for plan in plan_splits(TABLE, scale=0.01, seed=0):
        assert plan.annotated == plan.labels


def test_a_preset_sets_the_frame_size_and_writes_noisy_labels_only_to_the_labelled_csvs(tmp_path):
    plans = generate(tmp_path, scale=0.002, seed=1, progress=False, preset="tabletop")
    archive = zipfile.ZipFile(tmp_path / "frames.zip")
    image = Image.open(io.BytesIO(archive.read(archive.namelist()[0])))
    assert image.size == (96, 96)
    train = pd.read_csv(tmp_path / "train.csv", dtype={"video_id": str})
    assert train.label.tolist() == plans[0].annotated
    truth = pd.read_csv(tmp_path / "synth_test_labels.csv", dtype={"video_id": str})
    assert truth.label.tolist() == plans[2].labels
    assert 27 not in set(train.label)
    row = train.iloc[0]
    assert f"train/{TABLE.names[row.label]}/video_{row.video_id}/frame_0.jpg" in archive.namelist()


def test_cli_takes_a_preset_and_rejects_an_unknown_one(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["--out", str(tmp_path / "a"), "--scale", "0.001", "--size", "16", "--preset", "murky"])
    assert result.exit_code == 0, result.output
    assert "(murky) written" in result.output
    result = runner.invoke(main, ["--out", str(tmp_path / "b"), "--scale", "0.001", "--preset", "glossy"])
    assert result.exit_code == 2 and "glossy" in result.output


def test_an_unknown_preset_name_lists_the_presets():
    with pytest.raises(ValueError, match="unknown synth preset 'glossy'; presets: classic, "):
        get_look("glossy")


def test_the_config_schema_offers_exactly_the_presets():
    import yaml

    schema_file = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
    synth = schema["properties"]["data"]["properties"]["synth"]["properties"]
    assert synth["preset"]["enum"] == list(PRESETS) and synth["preset"]["default"] == DEFAULT_PRESET
