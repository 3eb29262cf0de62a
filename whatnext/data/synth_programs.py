"""Per-class action programs of the generated dataset.

A program draws the full action over t in [0, 1]; a clip shows it at ``CLIP_TIMES`` (the first 40%), so
the label is what happens next. Base programs are written per class *name*; the structural classes are
derived from the class table, never from hard-coded ids:

- ``reverse_of`` partner of a base program: ``B(t) = A(1 - t)`` (time reversal of the full action; a
  self-reverse class is written so that reversal maps its scene distribution onto itself);
- ``real_action_of`` (pretending): identical to the real action up to t = 0.4, then the motion
  retraces back to the start: the 4 visible frames are identically distributed (an intrinsic ceiling);
- ``mirror_of`` partner of a base program: the partner's frames mirrored left/right; every other class
  is mirrored with probability 1/2 (its distribution is mirror-symmetric).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from whatnext.data.class_table import ClassTable
from whatnext.data.synth_render import Dots, Layer, Line, Params, clamp01, lerp, smooth, wobble

PREFIX_END = 0.4
CLIP_TIMES = (0.0, PREFIX_END / 3, 2 * PREFIX_END / 3, PREFIX_END)  # 0, 0.133, 0.267, 0.4 (last exact)

DrawFn = Callable[[Params, float], list]


@dataclass(frozen=True)
class Program:
    """``draw(params, t)`` gives the draw list at time t; ``flip`` True/False mirrors every frame,
    None uses the scene's coin (mirror-symmetric class)."""

    draw: DrawFn
    flip: bool | None = None


GROUND = 0.74
THING = 0.26


def _thing(p: Params, cx: float, cy: float, scale: float = 1.0, angle: float = 0.0, h_sign: float = 1.0) -> Layer:
    s = THING * p.size * scale
    return Layer("thing", cx, cy, s, s * h_sign, angle)


def closing(p: Params, t: float) -> list:
    bx, by, bw, bh = 0.5 + p.jx, 0.66 + p.jy, 0.5 * p.size, 0.3 * p.size
    top = by - bh / 2
    lid_h = bh * t
    return [
        _thing(p, bx, top, 0.8),
        Layer("other", bx, by, bw, bh),
        Layer("lid", bx, top + lid_h / 2, bw * 1.06, lid_h),
    ]


def covering(p: Params, t: float) -> list:
    x = 0.55 + p.jx
    return [
        _thing(p, x, GROUND),
        Layer("other", lerp(x - 0.5, x, t), lerp(0.22, GROUND - 0.03, t), 0.42 * p.size, 0.36 * p.size),
    ]


def dropping_into(p: Params, t: float) -> list:
    x = 0.5 + p.jx
    y = 0.14 + 0.64 * min(1.0, (max(0.0, t - 0.2) / 0.4) ** 2)
    return [_thing(p, x, y, 0.85), Layer("other", x, 0.8, 0.46 * p.size, 0.26)]


def folding(p: Params, t: float) -> list:
    hinge, cy, half, h = 0.5 + p.jx, 0.58 + p.jy, 0.28 * p.size, 0.36 * p.size
    c = math.cos(math.pi * t)
    left = Layer("sheet_l", hinge - half / 2, cy, half, h)
    if c >= 0:
        flap = Layer("sheet_r", hinge + half * c / 2, cy, half * c, h)
    else:
        flap = Layer("sheet_back", hinge + half * c / 2, cy, half * -c, h)
    return [left, flap]


def hitting(p: Params, t: float) -> list:
    tx = 0.64 + p.jx
    contact = tx - THING * p.size / 2 - 0.17
    if t <= 0.4:
        hx, slide = lerp(-0.2, contact, t / 0.4), 0.0
    else:
        hx, slide = contact - 0.4 * (t - 0.4), 0.3 * (t - 0.4)
    return [_thing(p, tx + slide, GROUND, angle=-60 * slide), Layer("stick", hx, GROUND - 0.02, 0.34, 0.09, -12.0)]


def holding(p: Params, t: float) -> list:
    w = wobble(p, t)
    return [_thing(p, 0.5 + p.jx + 0.04 * w, 0.4 + p.jy + 0.025 * wobble(p, t + 0.2), 1.15, 10 * w)]


def moving_away(p: Params, t: float) -> list:
    ox = 0.2 + p.jx
    return [Layer("other", ox, GROUND - 0.04, 0.3, 0.34 * p.size), _thing(p, lerp(ox + 0.28, ox + 0.72, t), GROUND)]


def moving_down(p: Params, t: float) -> list:
    return [_thing(p, 0.5 + p.jx, lerp(0.15, 0.82, t))]


def picking_up(p: Params, t: float) -> list:
    s = smooth((t - 0.08) / 0.92)
    return [_thing(p, 0.5 + p.jx, lerp(0.8, 0.22, s), 1.0 + 0.7 * s, 25 * s)]


def pouring_into(p: Params, t: float) -> list:
    return [Layer("other", 0.66 + p.jx, 0.8, 0.4, 0.26), *_pour(p, t, 0.36 + p.jx, 0.36, floor=0.72, spread=0.0)]


def pouring_out_of(p: Params, t: float) -> list:
    return _pour(p, t, 0.45 + p.jx, 0.34, floor=0.9, spread=0.25)


def _pour(p: Params, t: float, x: float, y: float, floor: float, spread: float) -> list:
    """A tilting container; particles leave the spout after t=0.45 and fall to ``floor``."""
    angle = -115 * smooth(t / 0.5)
    spout_x, spout_y = x + THING * p.size * 0.55, y - 0.02
    xy = []
    for birth, vx, _ in p.particles:
        age = t - (0.45 + 0.4 * birth)
        if age > 0:
            fall = min(floor, spout_y + 3.0 * age * age + 0.2 * age)
            xy.append((spout_x + 0.05 * age + spread * vx * (fall - spout_y), fall))
    return [_thing(p, x, y, 0.95, angle), Dots(tuple(xy), 0.018)]


def pulling_left_to_right(p: Params, t: float) -> list:
    x = lerp(0.2, 0.78, t) + p.jx
    front = x + THING * p.size / 2
    return [_thing(p, x, GROUND), Line(front, GROUND, 1.05, GROUND - 0.12)]


def putting_behind(p: Params, t: float) -> list:
    u = smooth(t / 0.75)
    ox = 0.58 + p.jx
    return [_thing(p, lerp(0.1, ox, u), lerp(0.16, 0.56, u), lerp(1.0, 0.7, u)), Layer("other", ox, 0.68, 0.34, 0.42)]


def putting_in_front(p: Params, t: float) -> list:
    u = smooth(t / 0.75)
    ox = 0.58 + p.jx
    return [Layer("other", ox, 0.6, 0.34, 0.42), _thing(p, lerp(0.1, ox, u), lerp(0.16, 0.8, u), lerp(0.9, 1.3, u))]


def putting_into(p: Params, t: float) -> list:
    ox = 0.55 + p.jx
    if t < 0.6:
        x, y = lerp(0.12, ox, t / 0.6), lerp(0.3, 0.5, t / 0.6)
    else:
        x, y = ox, lerp(0.5, 0.88, (t - 0.6) / 0.4)
    return [_thing(p, x, y, 0.8), Layer("other", ox, 0.8, 0.44, 0.26)]


def putting_next_to(p: Params, t: float) -> list:
    u = smooth(t / 0.7)
    ox = 0.68 + p.jx
    return [Layer("other", ox, 0.66, 0.26, 0.44), _thing(p, lerp(0.02, ox - 0.32, u), lerp(0.45, GROUND, u * u))]


def putting_onto(p: Params, t: float) -> list:
    u = 1 - (1 - clamp01(t / 0.7)) ** 2
    ox = 0.5 + p.jx
    top = 0.8 - 0.11 - THING * p.size * 0.8 / 2
    return [Layer("other", ox, 0.8, 0.5, 0.22), _thing(p, ox, lerp(0.06, top, u), 0.8)]


def showing(p: Params, t: float) -> list:
    u = 1 - (1 - clamp01(t / 0.6)) ** 2
    return [_thing(p, 0.5 + p.jx, lerp(0.72, 0.45, u), lerp(0.75, 2.6, u), 15 * u)]


def spilling_next_to(p: Params, t: float) -> list:
    cx, ox = 0.3 + p.jx, 0.8 + p.jx
    tip = smooth(t / 0.3)
    xy = []
    for birth, vx, vy in p.particles:
        age = t - (0.15 + 0.3 * birth)
        if age > 0:
            xy.append((cx + 0.1 + (0.3 + 0.5 * vx) * min(age, 0.5), GROUND + 0.08 + 0.06 * vy - 0.05))
    return [Layer("other", ox, GROUND - 0.05, 0.26, 0.32), _thing(p, cx, GROUND, 0.9, -90 * tip), Dots(tuple(xy), 0.02)]


def throwing(p: Params, t: float) -> list:
    x0, y0 = 0.3 + p.jx, 0.62 + p.jy
    if t < 0.25:
        back = smooth(t / 0.25)
        return [_thing(p, x0 - 0.08 * back, y0 + 0.04 * back)]
    u = t - 0.25
    return [_thing(p, x0 - 0.08 + 1.8 * u, y0 + 0.04 - 1.4 * u + 2.2 * u * u, 1.0, -500 * u)]


def turning_upside_down(p: Params, t: float) -> list:
    return [_thing(p, 0.5 + p.jx, 0.55 + p.jy - 0.1 * math.sin(math.pi * t), 1.1, h_sign=p.orient * math.cos(math.pi * t))]


BASE_PROGRAMS: dict[str, DrawFn] = {
    "Closing something": closing,
    "Covering something with something": covering,
    "Dropping something into something": dropping_into,
    "Folding something": folding,
    "Hitting something with something": hitting,
    "Holding something": holding,
    "Moving something away from something": moving_away,
    "Moving something down": moving_down,
    "Picking something up": picking_up,
    "Pouring something into something": pouring_into,
    "Pouring something out of something": pouring_out_of,
    "Pulling something from left to right": pulling_left_to_right,
    "Putting something behind something": putting_behind,
    "Putting something in front of something": putting_in_front,
    "Putting something into something": putting_into,
    "Putting something next to something": putting_next_to,
    "Putting something onto something": putting_onto,
    "Showing something to the camera": showing,
    "Spilling something next to something": spilling_next_to,
    "Throwing something": throwing,
    "Turning something upside down": turning_upside_down,
}


def reversed_program(base: Program) -> Program:
    """The time reversal of the full action: B(t) = A(1 - t)."""
    return Program(lambda p, t: base.draw(p, 1.0 - t), base.flip)


def pretending_program(real: Program) -> Program:
    """Same as ``real`` up to PREFIX_END, then the motion retraces back to the start (nothing happens)."""

    def draw(p: Params, t: float) -> list:
        if t <= PREFIX_END:
            return real.draw(p, t)
        return real.draw(p, PREFIX_END * (1.0 - (t - PREFIX_END) / (1.0 - PREFIX_END)))

    return Program(draw, real.flip)


def class_programs(table: ClassTable) -> dict[int, Program]:
    """One program per populated class; raises naming a class whose program cannot be derived."""
    programs: dict[int, Program] = {}
    base = {c: Program(BASE_PROGRAMS[n]) for c, n in enumerate(table.names) if n in BASE_PROGRAMS}
    for c, m in enumerate(table.mirror_of):
        if c in base and m is not None and m not in base:
            base[c] = Program(base[c].draw, flip=False)
    populated = [c for c in range(table.num_classes) if table.train_clips[c] or table.val_clips[c]]
    for c in populated:  # base programs, their time reversals and mirror images
        rev, mirror = table.reverse_of[c], table.mirror_of[c]
        if c in base:
            programs[c] = base[c]
        elif rev is not None and rev in base:
            programs[c] = reversed_program(base[rev])
        elif mirror is not None and mirror in base:
            programs[c] = Program(base[mirror].draw, flip=not base[mirror].flip)
    for c in populated:  # pretending classes share the visible beginning of any real action above
        real = table.real_action_of[c]
        if c not in programs and real is not None and real in programs:
            programs[c] = pretending_program(programs[real])
    missing = [c for c in populated if c not in programs]
    if missing:
        c = missing[0]
        raise ValueError(f"class {c} ({table.names[c]!r}): no generator program and no derivable partner")
    return programs
