"""Named looks of the generated dataset: the ways real datasets differ from each other.

A :class:`Look` is everything about how a clip looks that the class does not decide: where the scenes
come from, how the objects are textured and shaped, their contrast and size on the frame, static
clutter, camera motion, illumination, frame size and label noise. The action programs
(``synth_programs``) and the structure they carry (mirror pair, time reversals, pretending, the empty
class 27) are the same under every look.

Presets (``python -m whatnext.data.synth --preset NAME``):

========== ================================================================================================
classic    the original look: dimmed photograph crops, photo-textured digits and ellipses with a dark rim,
           each class's objects in nearly the same place, 0-2 distractors, a still camera, 64 px
tabletop   procedural rooms (wall, table, shelves of flat colour), flat-coloured polygons, bigger
           objects, the action moved by up to 0.12, a slow pan, 96 px, 5% label noise
handheld   undimmed photographs, contrast halved, no rim, action moved by up to 0.18, 1-4 distractors,
           camera shake, 64 px, 3% noise
cluttered  hard: photographs busy with 4-7 distractors, small low-contrast objects with no rim, action
           moved by up to 0.22, shake and pan, wide illumination range, 128 px, 8% label noise
murky      HELD OUT, hard: a scene source no other preset uses (fractal noise), noise-textured polygons,
           low contrast, no rim, small objects moved by up to 0.22, 3-6 distractors, shake and pan,
           112 px, 8% label noise
========== ================================================================================================

``murky`` is held out (``HELD_OUT``): it is only ever used to report how the pipeline does on data it
was not tuned on, never to choose a default. Defaults are chosen on ``TUNING_PRESETS``.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKGROUNDS = ("photo", "tiles", "noise")
TEXTURES = ("photo", "flat", "noise")
SHAPES = ("digits", "polygons")


@dataclass(frozen=True)
class Look:
    """How the clips of a generated dataset look.

    size: native frame side (px; ``--size`` overrides it). background: scene source (``photo``:
    scikit-learn's sample photographs; ``tiles``: procedural rooms; ``noise``: fractal value noise).
    background_mix: weights of the background's pixels and of its mean (the classic look dims the
    photo so the action stands out). textures: what objects are textured with; shapes: the
    "something" silhouette (``digits``: a handwritten digit or an ellipse; ``polygons``: a random
    star-shaped polygon). contrast: object textures are stretched to grey levels [lo, lo + span].
    rim: a dark outline around objects. zoom: every object and motion drawn at this scale about the
    frame centre (a camera further away). shift: the whole action moved by up to this much (frame
    fractions, per clip and axis), so that where things are says less about the class. clutter: distractors per clip, inclusive range. pan:
    camera travel, frame fractions, between mid-action and the clip's first frame; shake:
    amplitude of the camera's jitter, frame fractions. gain: range of the illumination factor.
    label_noise: fraction of train and val labels replaced by another populated class (the test
    truth stays clean).
    """

    name: str
    size: int
    background: str = "photo"
    background_mix: tuple[float, float] = (0.45, 0.55)
    textures: str = "photo"
    shapes: str = "digits"
    contrast: tuple[float, float] = (10.0, 235.0)
    rim: bool = True
    zoom: float = 1.0
    shift: float = 0.0
    clutter: tuple[int, int] = (0, 2)
    pan: float = 0.0
    shake: float = 0.0
    gain: tuple[float, float] = (0.75, 1.2)
    label_noise: float = 0.0

    def __post_init__(self):
        for field_name, value, allowed in (
            ("background", self.background, BACKGROUNDS),
            ("textures", self.textures, TEXTURES),
            ("shapes", self.shapes, SHAPES),
        ):
            if value not in allowed:
                raise ValueError(f"look {self.name!r}: {field_name} must be one of {allowed}, got {value!r}")
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"look {self.name!r}: label_noise must be in [0, 1), got {self.label_noise}")

    @property
    def camera_moves(self) -> bool:
        return self.pan > 0 or self.shake > 0


PRESETS: dict[str, Look] = {
    look.name: look
    for look in (
        Look("classic", size=64),
        Look(
            "tabletop", size=96, background="tiles", background_mix=(0.8, 0.2), textures="flat",
            shapes="polygons", zoom=1.15, shift=0.12, clutter=(0, 2), pan=0.05, label_noise=0.05,
        ),
        Look(
            "handheld", size=64, background_mix=(1.0, 0.0), contrast=(60.0, 130.0), rim=False,
            shift=0.18, clutter=(1, 4), shake=0.025, gain=(0.7, 1.25), label_noise=0.03,
        ),
        Look(
            "cluttered", size=128, background_mix=(0.7, 0.3), contrast=(75.0, 90.0), rim=False,
            zoom=0.75, shift=0.22, clutter=(4, 7), pan=0.06, shake=0.02, gain=(0.55, 1.3), label_noise=0.08,
        ),
        Look(
            "murky", size=112, background="noise", background_mix=(0.9, 0.1), textures="noise",
            shapes="polygons", contrast=(50.0, 150.0), rim=False, zoom=0.75, shift=0.22, clutter=(3, 6), pan=0.06,
            shake=0.03, gain=(0.6, 1.3), label_noise=0.08,
        ),
    )
}
DEFAULT_PRESET = "classic"
HELD_OUT = "murky"  # report only: never used to choose a default
TUNING_PRESETS = tuple(name for name in PRESETS if name != HELD_OUT)


def get_look(name: str) -> Look:
    """The preset called ``name``; raises ValueError listing the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown synth preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]
