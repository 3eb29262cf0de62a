"""Scene sampling and frame rendering for the generated dataset (see ``whatnext.data.synth``).

A *scene* is everything random about one clip that does not depend on its class: a background cut from
one of scikit-learn's sample photographs, with static distractor objects; the "something" (a handwritten
digit from scikit-learn's digits, or an elliptical patch of a photograph, textured with a photograph);
the second "something" (a rectangular photograph patch: container, cover, hitter, lid); jitter of
positions and sizes; a coin for the left/right side; an illumination gain. A *program* maps (scene
parameters, time t in [0, 1]) to the layers to draw; rendering draws them over the background. Coordinates are fractions of the frame (x right, y down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SPRITE_PX = 48  # base resolution of every sprite before it is resized onto the frame


@dataclass(frozen=True)
class Layer:
    """One sprite on the frame: centre (cx, cy) and size (w, h) in frame fractions; a negative w or h
    mirrors the sprite along that axis; ``angle`` in degrees, counter-clockwise."""

    sprite: str
    cx: float
    cy: float
    w: float
    h: float
    angle: float = 0.0


@dataclass(frozen=True)
class Dots:
    """Small particles (liquid, spilled grains): centres in frame fractions, radius in frame fractions."""

    xy: tuple[tuple[float, float], ...]
    radius: float


@dataclass(frozen=True)
class Line:
    """A string or stick from (x0, y0) to (x1, y1), in frame fractions."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Params:
    """The scalar randomness of a scene that programs read.

    jx, jy: position jitter (frame fractions); size: size factor; orient: +1 upright or -1 upside
    down at t=0 (turning programs); phase: wobble phase in turns; particles: [n, 3] uniforms in [0, 1)
    for particle programs.
    """

    jx: float
    jy: float
    size: float
    orient: int
    phase: float
    particles: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class Scene:
    """One clip's randomness: background [S, S, 3] uint8 (a dimmed photo crop with 0-2 static distractor
    objects), RGBA sprites keyed by name, params, side coin, particle colour and illumination gain."""

    background: np.ndarray = field(compare=False)
    sprites: "Sprites" = field(compare=False)
    params: Params
    flip_coin: bool
    particle_rgb: tuple[int, int, int]
    gain: float  # illumination: every frame's pixels are multiplied by it


@lru_cache(maxsize=1)
def _photos() -> tuple[Image.Image, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(Image.fromarray(img) for img in load_sample_images().images)


@lru_cache(maxsize=1)
def _digits() -> np.ndarray:
    """[n, 8, 8] float in [0, 1]."""
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)


def _photo_crop(rng: np.random.Generator, out_w: int, out_h: int, min_side: int, max_side: int) -> Image.Image:
    """A random crop of a random sample photograph, resized to (out_w, out_h), RGB."""
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    side = int(rng.integers(min_side, max_side + 1))
    aspect = out_w / out_h
    cw, ch = (side, max(8, int(side / aspect))) if aspect >= 1 else (max(8, int(side * aspect)), side)
    x0 = int(rng.integers(0, photo.width - cw + 1))
    y0 = int(rng.integers(0, photo.height - ch + 1))
    crop = photo.resize((out_w, out_h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    return crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def _textured_crop(rng: np.random.Generator, out_w: int, out_h: int, min_side: int, max_side: int) -> Image.Image:
    """Like ``_photo_crop`` but redrawn (up to 8 times) while the crop is nearly flat (sky, out-of-focus)."""
    for _ in range(8):
        crop = _photo_crop(rng, out_w, out_h, min_side, max_side)
        if np.asarray(crop, dtype=np.float32).std(axis=(0, 1)).max() >= 20.0:
            break
    return crop


def _stretch(rgb: np.ndarray) -> np.ndarray:
    """Per-channel contrast stretch to the full range so objects stand out of the dimmed background."""
    rgb = rgb.astype(np.float32)
    lo = rgb.min(axis=(0, 1), keepdims=True)
    hi = rgb.max(axis=(0, 1), keepdims=True)
    return (rgb - lo) / np.maximum(hi - lo, 1.0) * 235.0 + 10.0


def _outlined(texture: Image.Image, alpha: np.ndarray) -> Image.Image:
    """RGBA sprite: the texture inside ``alpha`` (float [h, w] in [0, 1]) with a dark two-pixel rim."""
    inner = Image.fromarray((alpha * 255).astype(np.uint8), "L")
    outer = np.asarray(inner.filter(ImageFilter.MaxFilter(5)), dtype=np.float32) / 255.0
    rgb = _stretch(np.asarray(texture)) * alpha[..., None]  # rim pixels stay dark
    rgba = np.concatenate([rgb, outer[..., None] * 255.0], axis=2)
    return Image.fromarray(rgba.clip(0, 255).astype(np.uint8), "RGBA")


def _thing_sprite(rng: np.random.Generator) -> Image.Image:
    """The "something": a digit silhouette or an elliptical photo patch, textured by a photo."""
    n = SPRITE_PX
    texture = _textured_crop(rng, n, n, 40, 160)
    if rng.random() < 0.5:
        digits = _digits()
        digit = Image.fromarray((digits[int(rng.integers(len(digits)))] * 255).astype(np.uint8), "L")
        alpha = np.asarray(digit.resize((n - 6, n - 6), Image.BILINEAR), dtype=np.float32) / 255.0
        alpha = np.pad(np.clip((alpha - 0.25) * 2.0, 0.0, 1.0), 3)
    else:
        yy, xx = np.mgrid[0:n, 0:n] + 0.5
        ry, rx = (n / 2 - 3) * rng.uniform(0.6, 1.0), (n / 2 - 3) * rng.uniform(0.6, 1.0)
        alpha = (((xx - n / 2) / rx) ** 2 + ((yy - n / 2) / ry) ** 2 <= 1.0).astype(np.float32)
    return _outlined(texture, alpha)


def _box_sprite(rng: np.random.Generator, w: int, h: int, shade: float = 1.0) -> Image.Image:
    """A rectangular photo patch with a dark rim (container, cover, lid, hitter, sheet)."""
    texture = _textured_crop(rng, w, h, 40, 200)
    alpha = np.zeros((h, w), np.float32)
    alpha[2:-2, 2:-2] = shade
    sprite = _outlined(texture, alpha)
    sprite.putalpha(Image.fromarray(np.full((h, w), 255, np.uint8)))
    return sprite


def _sheet_sprites(rng: np.random.Generator) -> dict[str, Image.Image]:
    """A foldable sheet: left half, right half (front) and right half seen from the back (darker)."""
    n = SPRITE_PX
    sheet = _box_sprite(rng, 2 * n, n)
    left = sheet.crop((0, 0, n, n))
    right = sheet.crop((n, 0, 2 * n, n))
    back = Image.fromarray((np.asarray(right, np.float32) * [0.45, 0.45, 0.45, 1.0]).astype(np.uint8), "RGBA")
    return {"sheet_l": left, "sheet_r": right, "sheet_back": back.transpose(Image.FLIP_LEFT_RIGHT)}



class Sprites:
    """The scene's RGBA sprites by name, each drawn on first use from its own generator (seeded from the
    scene), so a clip only pays for the sprites its program shows and the result never depends on the
    order of use."""

    MAKERS = {
        "thing": _thing_sprite,
        "other": lambda rng: _box_sprite(rng, SPRITE_PX, SPRITE_PX),
        "lid": lambda rng: _box_sprite(rng, SPRITE_PX, SPRITE_PX // 2, shade=0.6),
        "stick": lambda rng: _box_sprite(rng, SPRITE_PX, SPRITE_PX // 4),
        "sheet": _sheet_sprites,
    }

    def __init__(self, seed: int):
        self.seed = seed
        self._made: dict[str, Image.Image] = {}

    def __getitem__(self, name: str) -> Image.Image:
        group = name.split("_")[0]
        if name not in self._made:
            made = self.MAKERS[group](np.random.default_rng([self.seed, list(self.MAKERS).index(group)]))
            self._made.update(made if isinstance(made, dict) else {name: made})
        return self._made[name]


def sample_scene(rng: np.random.Generator, size: int) -> Scene:
    """Draw one clip's scene for frames of ``size`` x ``size`` pixels (independent of the class)."""
    bg = np.asarray(_photo_crop(rng, size, size, 96, 320), dtype=np.float32)
    background = Image.fromarray((0.45 * bg + 0.55 * bg.mean()).astype(np.uint8))  # dimmed: the action stands out
    for _ in range(int(rng.integers(0, 3))):  # static clutter: distractor objects that take no part
        side = float(rng.uniform(0.12, 0.22))
        clutter = Layer("clutter", float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)), side, side, float(rng.uniform(-40, 40)))
        _paste(background, _thing_sprite(rng), clutter, size)
    params = Params(
        jx=float(rng.uniform(-0.08, 0.08)),
        jy=float(rng.uniform(-0.06, 0.06)),
        size=float(rng.uniform(0.8, 1.2)),
        orient=int(rng.choice([-1, 1])),
        phase=float(rng.random()),
        particles=rng.random((12, 3)),
    )
    particle_rgb = tuple(int(v) for v in rng.integers(120, 256, size=3))
    flip_coin = bool(rng.random() < 0.5)
    gain = float(rng.uniform(0.75, 1.2))
    return Scene(np.asarray(background), Sprites(int(rng.integers(2**62))), params, flip_coin, particle_rgb, gain)


def with_params(scene: Scene, **changes) -> Scene:
    """The same scene with some parameters replaced (used to state exact symmetries in tests)."""
    return replace(scene, params=replace(scene.params, **changes))


def _paste(canvas: Image.Image, sprite: Image.Image, layer: Layer, size: int) -> None:
    w, h = round(abs(layer.w) * size), round(abs(layer.h) * size)
    if w < 1 or h < 1:
        return
    img = sprite.resize((w, h), Image.BILINEAR)
    if layer.w < 0:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if layer.h < 0:
        img = img.transpose(Image.FLIP_TOP_BOTTOM)
    if layer.angle:
        img = img.rotate(layer.angle, resample=Image.BILINEAR, expand=True)
    x0 = round(layer.cx * size - img.width / 2)
    y0 = round(layer.cy * size - img.height / 2)
    canvas.paste(img, (x0, y0), img)


def render_frame(draw_list: list, scene: Scene, flip: bool) -> np.ndarray:
    """Draw layers, dots and lines (in order) over the scene's background; [S, S, 3] uint8."""
    size = scene.background.shape[0]
    canvas = Image.fromarray(scene.background)
    pen = ImageDraw.Draw(canvas)
    for item in draw_list:
        if isinstance(item, Layer):
            _paste(canvas, scene.sprites[item.sprite], item, size)
        elif isinstance(item, Dots):
            r = max(0.6, item.radius * size)
            for x, y in item.xy:
                pen.ellipse((x * size - r, y * size - r, x * size + r, y * size + r), fill=scene.particle_rgb)
        else:
            width = max(1, round(size / 40))
            pen.line((item.x0 * size, item.y0 * size, item.x1 * size, item.y1 * size), fill=(20, 20, 20), width=width)
    frame = np.asarray(canvas).astype(np.float32) * scene.gain
    frame = frame.clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame[:, ::-1]) if flip else frame


def clamp01(u: float) -> float:
    return min(1.0, max(0.0, u))


def lerp(a: float, b: float, u: float) -> float:
    return a + (b - a) * u


def smooth(u: float) -> float:
    """Smoothstep of clamp01(u): eased start and stop."""
    u = clamp01(u)
    return u * u * (3.0 - 2.0 * u)


def wobble(p: Params, t: float, cycles: float = 1.5) -> float:
    return math.sin(2.0 * math.pi * (cycles * t + p.phase))
