"""Procedural scene and object textures for the generated dataset's non-photographic looks.

Every function takes the clip's generator and returns a PIL RGB image (or an alpha mask), so the
renderer can use them where the classic look cuts photographs. Sizes are pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def value_noise(rng: np.random.Generator, w: int, h: int, octaves: int = 4, base: int = 3) -> np.ndarray:
    """Fractal value noise: float32 [h, w] in [0, 1], octaves of bilinearly upsampled random grids
    (grid side ``base * 2**k``, weight ``2**-k``)."""
    total = np.zeros((h, w), np.float32)
    for k in range(octaves):
        side = base * 2**k
        grid = Image.fromarray(rng.random((side, side)).astype(np.float32), "F")
        total += np.asarray(grid.resize((w, h), Image.BILINEAR), dtype=np.float32) * 0.5**k
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random colours, float32 [n, 3] in 0..255."""
    return rng.uniform(20, 235, size=(n, 3)).astype(np.float32)


def noise_image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Value noise coloured between two random colours, with a third one in its highlights."""
    a, b, c = _palette(rng, 3)
    u = value_noise(rng, w, h)[..., None]
    v = value_noise(rng, w, h, octaves=3, base=2)[..., None]
    rgb = a * (1 - u) + b * u
    rgb = rgb * (1 - 0.5 * v**2) + c * 0.5 * v**2
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def tiles_image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A procedural room: a wall over a table top (horizon at 40-70% of the height), each with a
    vertical shading gradient, 3-8 flat boxes and shelves, and faint sensor noise."""
    wall, table = _palette(rng, 2)
    horizon = int(h * rng.uniform(0.4, 0.7))
    ramp = np.linspace(0.8, 1.1, h, dtype=np.float32)[:, None, None]
    rgb = np.where(np.arange(h)[:, None, None] < horizon, wall, table) * ramp
    rgb = np.broadcast_to(rgb, (h, w, 3)).copy()
    for colour in _palette(rng, int(rng.integers(3, 9))):
        bw, bh = int(w * rng.uniform(0.08, 0.35)), int(h * rng.uniform(0.05, 0.3))
        x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, max(1, horizon - bh // 2)))
        rgb[y0 : y0 + bh, x0 : x0 + bw] = colour * rng.uniform(0.85, 1.15)
    rgb += rng.normal(0, 4, size=rgb.shape).astype(np.float32)
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def flat_image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """One random colour with a soft diagonal shading (a painted or plastic object)."""
    colour = _palette(rng, 1)[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 0.75 + 0.5 * (xx / max(w - 1, 1) + yy / max(h - 1, 1)) / 2
    return Image.fromarray((colour * shade[..., None]).clip(0, 255).astype(np.uint8))


def polygon_alpha(rng: np.random.Generator, n: int, margin: int = 3) -> np.ndarray:
    """A random star-shaped polygon (5-9 vertices at random radii) filling an n x n box less
    ``margin``: float32 [n, n] alpha in [0, 1], antialiased by drawing at 4x."""
    k = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(0.55, 1.0, k) * (n / 2 - margin) * 4
    centre = n * 2
    mask = Image.new("L", (4 * n, 4 * n), 0)
    ImageDraw.Draw(mask).polygon(
        [(centre + r * np.cos(a), centre + r * np.sin(a)) for a, r in zip(angles, radii)], fill=255
    )
    return np.asarray(mask.resize((n, n), Image.BOX), dtype=np.float32) / 255.0
