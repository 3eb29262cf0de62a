"""Scene sampling and frame rendering for the generated dataset (see ``whatnext.data.synth``).

A *scene* is everything random about one clip that does not depend on its class: a background (in the
classic look cut from one of scikit-learn's sample photographs), with static distractor objects; the
"something" (a handwritten digit from scikit-learn's digits, or an elliptical patch of a photograph,
textured with a photograph); the second "something" (a rectangular photograph patch: container, cover,
hitter, lid); jitter of positions and sizes; a coin for the left/right side; an illumination gain; the
camera's motion. How each of these is drawn is the dataset's :class:`~whatnext.data.synth_presets.Look`.
A *program* maps (scene parameters, time t in [0, 1]) to the layers to draw; rendering draws them over
the background. Coordinates are fractions of the frame (x right, y down).

The camera's offset is an even function of t - 0.5, so a clip rendered backwards in time sees the
same camera as the time-reversed action: the reversal structure of the classes stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from whatnext.data import synth_textures
from whatnext.data.synth_presets import DEFAULT_PRESET, Look, get_look

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
class Camera:
    """A clip's camera: offset(t) in frame fractions, even in t - 0.5 (see the module docstring).

    pan: (x, y) offset at t = 0 and t = 1; shake: (amplitude x, amplitude y, cycles per action, phase
    in turns) terms of a jitter ``sum a cos(2 pi (f |t - 0.5| + phase))``.
    """

    pan: tuple[float, float]
    shake: tuple[tuple[float, float, float, float], ...]

    def offset(self, t: float) -> tuple[float, float]:
        u = round(abs(t - 0.5), 9)  # rounded: t and 1 - t (computed in floats) give the same offset
        dx, dy = 2 * u * self.pan[0], 2 * u * self.pan[1]
        for ax, ay, cycles, phase in self.shake:
            wave = math.cos(2 * math.pi * (cycles * u + phase))
            dx, dy = dx + ax * wave, dy + ay * wave
        return dx, dy

    @staticmethod
    def sample(rng: np.random.Generator, look: Look) -> "Camera":
        direction = rng.uniform(-1, 1, size=2)
        weights = rng.dirichlet(np.ones(3))  # three shake terms, amplitudes summing to ``look.shake``
        shake = tuple(
            (float(w * look.shake * rng.choice([-1, 1])), float(w * look.shake * rng.choice([-1, 1])),
             float(rng.uniform(2.5, 7.5)), float(rng.random()))
            for w in weights
        )
        return Camera((float(direction[0] * look.pan), float(direction[1] * look.pan)), shake)

    @staticmethod
    def reach(look: Look) -> float:
        """The largest offset along either axis, frame fractions."""
        return look.pan + look.shake


@dataclass(frozen=True)
class Geometry:
    """Where frame fractions land on a scene's background: frame side ``size`` px, the action drawn at
    ``zoom`` about the frame centre and moved by ``shift`` (x, y; frame fractions), on a background with
    ``margin`` px more on every side (the room the camera moves in; 0 for a still camera)."""

    size: int
    zoom: float = 1.0
    margin: int = 0
    shift: tuple[float, float] = (0.0, 0.0)

    @property
    def scale(self) -> float:
        """Pixels per frame fraction of an object's size."""
        return self.size * self.zoom

    def px(self, u: float, axis: int) -> float:
        """A frame fraction along ``axis`` (0: x, 1: y) as a pixel coordinate on the background."""
        if self.zoom != 1.0:  # the identity is skipped, not computed: the classic look stays bitwise
            u = 0.5 + (u - 0.5) * self.zoom
        return (u + self.shift[axis]) * self.size + self.margin


@dataclass(frozen=True)
class Scene:
    """One clip's randomness: background [S + 2 margin, S + 2 margin, 3] uint8 (the scene with its static
    distractor objects), RGBA sprites keyed by name, params, side coin, particle colour, illumination
    gain, geometry and camera (None: still)."""

    background: np.ndarray = field(compare=False)
    sprites: "Sprites" = field(compare=False)
    params: Params
    flip_coin: bool
    particle_rgb: tuple[int, int, int]
    gain: float  # illumination: every frame's pixels are multiplied by it
    geometry: Geometry
    camera: Camera | None = None


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


def _stretch(rgb: np.ndarray, look: Look) -> np.ndarray:
    """Contrast stretch to grey levels [lo, lo + span] (the classic look: the full range, so objects stand
    out of the dimmed background); photo textures per channel, procedural ones (whose colour is the
    point) over all channels at once."""
    rgb = rgb.astype(np.float32)
    axes = (0, 1) if look.textures == "photo" else (0, 1, 2)
    lo = rgb.min(axis=axes, keepdims=True)
    hi = rgb.max(axis=axes, keepdims=True)
    return (rgb - lo) / np.maximum(hi - lo, 1.0) * look.contrast[1] + look.contrast[0]


def _outlined(texture: Image.Image, alpha: np.ndarray, look: Look) -> Image.Image:
    """RGBA sprite: the texture inside ``alpha`` (float [h, w] in [0, 1]), with a dark two-pixel rim if
    the look has one."""
    if not look.rim:
        rgba = np.concatenate([_stretch(np.asarray(texture), look), alpha[..., None] * 255.0], axis=2)
        return Image.fromarray(rgba.clip(0, 255).astype(np.uint8), "RGBA")
    inner = Image.fromarray((alpha * 255).astype(np.uint8), "L")
    outer = np.asarray(inner.filter(ImageFilter.MaxFilter(5)), dtype=np.float32) / 255.0
    rgb = _stretch(np.asarray(texture), look) * alpha[..., None]  # rim pixels stay dark
    rgba = np.concatenate([rgb, outer[..., None] * 255.0], axis=2)
    return Image.fromarray(rgba.clip(0, 255).astype(np.uint8), "RGBA")


def _object_texture(rng: np.random.Generator, look: Look, w: int, h: int, max_side: int) -> Image.Image:
    """An object's texture, w x h px: a photo crop (at most ``max_side`` px of the photo), a flat
    shaded colour or coloured noise."""
    if look.textures == "photo":
        return _textured_crop(rng, w, h, 40, max_side)
    if look.textures == "flat":
        return synth_textures.flat_image(rng, w, h)
    return synth_textures.noise_image(rng, w, h)


def _thing_sprite(rng: np.random.Generator, look: Look) -> Image.Image:
    """The "something": a digit silhouette or an elliptical patch (or, in a polygons look, a random
    star-shaped polygon), textured as the look says."""
    n = SPRITE_PX
    texture = _object_texture(rng, look, n, n, 160)
    if look.shapes == "polygons":
        alpha = synth_textures.polygon_alpha(rng, n)
    elif rng.random() < 0.5:
        digits = _digits()
        digit = Image.fromarray((digits[int(rng.integers(len(digits)))] * 255).astype(np.uint8), "L")
        alpha = np.asarray(digit.resize((n - 6, n - 6), Image.BILINEAR), dtype=np.float32) / 255.0
        alpha = np.pad(np.clip((alpha - 0.25) * 2.0, 0.0, 1.0), 3)
    else:
        yy, xx = np.mgrid[0:n, 0:n] + 0.5
        ry, rx = (n / 2 - 3) * rng.uniform(0.6, 1.0), (n / 2 - 3) * rng.uniform(0.6, 1.0)
        alpha = (((xx - n / 2) / rx) ** 2 + ((yy - n / 2) / ry) ** 2 <= 1.0).astype(np.float32)
    return _outlined(texture, alpha, look)


def _box_sprite(rng: np.random.Generator, look: Look, w: int, h: int, shade: float = 1.0) -> Image.Image:
    """A rectangular textured patch, with a dark rim if the look has one (container, cover, lid, hitter,
    sheet); ``shade`` darkens the inside."""
    texture = _object_texture(rng, look, w, h, 200)
    alpha = np.zeros((h, w), np.float32)
    alpha[2:-2, 2:-2] = shade
    if not look.rim:
        alpha[:] = shade
    sprite = _outlined(texture, alpha, look)
    sprite.putalpha(Image.fromarray(np.full((h, w), 255, np.uint8)))
    return sprite


def _sheet_sprites(rng: np.random.Generator, look: Look) -> dict[str, Image.Image]:
    """A foldable sheet: left half, right half (front) and right half seen from the back (darker)."""
    n = SPRITE_PX
    sheet = _box_sprite(rng, look, 2 * n, n)
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
        "other": lambda rng, look: _box_sprite(rng, look, SPRITE_PX, SPRITE_PX),
        "lid": lambda rng, look: _box_sprite(rng, look, SPRITE_PX, SPRITE_PX // 2, shade=0.6),
        "stick": lambda rng, look: _box_sprite(rng, look, SPRITE_PX, SPRITE_PX // 4),
        "sheet": _sheet_sprites,
    }

    def __init__(self, seed: int, look: Look):
        self.seed = seed
        self.look = look
        self._made: dict[str, Image.Image] = {}

    def __getitem__(self, name: str) -> Image.Image:
        group = name.split("_")[0]
        if name not in self._made:
            made = self.MAKERS[group](np.random.default_rng([self.seed, list(self.MAKERS).index(group)]), self.look)
            self._made.update(made if isinstance(made, dict) else {name: made})
        return self._made[name]


def _background(rng: np.random.Generator, side: int, look: Look) -> Image.Image:
    """The scene behind the action, ``side`` px square, from the look's scene source."""
    if look.background == "photo":
        return _photo_crop(rng, side, side, 96, 320)
    if look.background == "tiles":
        return synth_textures.tiles_image(rng, side, side)
    return synth_textures.noise_image(rng, side, side)


def sample_scene(rng: np.random.Generator, size: int, look: Look | str = DEFAULT_PRESET) -> Scene:
    """Draw one clip's scene for frames of ``size`` x ``size`` pixels (independent of the class) in the
    look (a :class:`Look` or a preset name)."""
    look = get_look(look) if isinstance(look, str) else look
    margin = math.ceil(Camera.reach(look) * size) + 1 if look.camera_moves else 0
    bg = np.asarray(_background(rng, size + 2 * margin, look), dtype=np.float32)
    own, flat = look.background_mix  # the classic look dims the photo: the action stands out
    background = Image.fromarray((own * bg + flat * bg.mean()).astype(np.uint8))
    shift = (0.0, 0.0)
    if look.shift > 0:  # drawn only when used: the classic look's stream of draws stays as it was
        shift = (float(rng.uniform(-look.shift, look.shift)), float(rng.uniform(-look.shift, look.shift)))
    geometry = Geometry(size, look.zoom, margin, shift)
    for _ in range(int(rng.integers(look.clutter[0], look.clutter[1] + 1))):  # static distractors, no part in the action
        side = float(rng.uniform(0.12, 0.22))
        clutter = Layer("clutter", float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)), side, side, float(rng.uniform(-40, 40)))
        _paste(background, _thing_sprite(rng, look), clutter, geometry)
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
    gain = float(rng.uniform(*look.gain))
    sprites = Sprites(int(rng.integers(2**62)), look)
    camera = Camera.sample(rng, look) if look.camera_moves else None
    return Scene(np.asarray(background), sprites, params, flip_coin, particle_rgb, gain, geometry, camera)


def with_params(scene: Scene, **changes) -> Scene:
    """The same scene with some parameters replaced (used to state exact symmetries in tests)."""
    return replace(scene, params=replace(scene.params, **changes))


def _paste(canvas: Image.Image, sprite: Image.Image, layer: Layer, geometry: Geometry) -> None:
    """Draw ``sprite`` where ``layer`` says."""
    w, h = round(abs(layer.w) * geometry.scale), round(abs(layer.h) * geometry.scale)
    if w < 1 or h < 1:
        return
    img = sprite.resize((w, h), Image.BILINEAR)
    if layer.w < 0:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if layer.h < 0:
        img = img.transpose(Image.FLIP_TOP_BOTTOM)
    if layer.angle:
        img = img.rotate(layer.angle, resample=Image.BILINEAR, expand=True)
    x0 = round(geometry.px(layer.cx, 0) - img.width / 2)
    y0 = round(geometry.px(layer.cy, 1) - img.height / 2)
    canvas.paste(img, (x0, y0), img)


def _through_camera(canvas: Image.Image, scene: Scene, t: float) -> Image.Image:
    """The frame the scene's camera sees at time t: an S x S window of the canvas, bilinear."""
    if scene.camera is None:
        return canvas
    dx, dy = scene.camera.offset(t)
    side, margin = scene.geometry.size, scene.geometry.margin
    return canvas.transform((side, side), Image.AFFINE, (1, 0, margin + dx * side, 0, 1, margin + dy * side), resample=Image.BILINEAR)


def render_frame(draw_list: list, scene: Scene, flip: bool, t: float = 0.5) -> np.ndarray:
    """Draw layers, dots and lines (in order) over the scene's background and look through the
    camera at time ``t``; [S, S, 3] uint8."""
    geometry = scene.geometry
    canvas = Image.fromarray(scene.background)
    pen = ImageDraw.Draw(canvas)
    for item in draw_list:
        if isinstance(item, Layer):
            _paste(canvas, scene.sprites[item.sprite], item, geometry)
        elif isinstance(item, Dots):
            r = max(0.6, item.radius * geometry.scale)
            for x, y in item.xy:
                px, py = geometry.px(x, 0), geometry.px(y, 1)
                pen.ellipse((px - r, py - r, px + r, py + r), fill=scene.particle_rgb)
        else:
            width = max(1, round(geometry.scale / 40))
            ends = (geometry.px(item.x0, 0), geometry.px(item.y0, 1), geometry.px(item.x1, 0), geometry.px(item.y1, 1))
            pen.line(ends, fill=(20, 20, 20), width=width)
    frame = np.asarray(_through_camera(canvas, scene, t)).astype(np.float32) * scene.gain
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
