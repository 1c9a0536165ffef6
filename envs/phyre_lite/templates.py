"""PHYRE-Lite templates: each maps a seeded rng to the bodies of one puzzle variant.

Coordinates are scene px (256x256, y up, the floor is the scene's bottom edge). Every template
starts from a scene where doing nothing leaves the green body off the goal. Templates of your own
are added with `register_template`; the folds of the built-in templates never change.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ..base import is_plain_name
from .scene import GREEN, BodySpec, Puzzle, attempt, build_space

VARIANTS_PER_TEMPLATE = 100
STRIP = 3.0  # height of a goal strip lying on the floor


def ball(role: str, x: float, y: float, r: float, dynamic: bool = True) -> BodySpec:
    """A disc centred at (x, y)."""
    return BodySpec(role, (("circle", (0.0, 0.0), float(r)),), (float(x), float(y)),
                    dynamic=dynamic)


def box(role: str, x: float, y: float, w: float, h: float, angle: float = 0.0,
        dynamic: bool = True) -> BodySpec:
    """A w x h rectangle centred at (x, y), rotated by `angle`."""
    hw, hh = w / 2, h / 2
    verts = ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))
    return BodySpec(role, (("poly", verts),), (float(x), float(y)), float(angle), dynamic)


def static_poly(verts, role: str = "static") -> BodySpec:
    """A static convex polygon given in scene px."""
    return BodySpec(role, (("poly", tuple((float(x), float(y)) for x, y in verts)),), (0.0, 0.0),
                    dynamic=False)


def shelf(x0: float, x1: float, top: float, thickness: float = 8.0) -> BodySpec:
    """A static horizontal shelf spanning x0..x1 whose upper face is at `top`."""
    return static_poly(((x0, top - thickness), (x1, top - thickness), (x1, top), (x0, top)))


def floor_bin(x0: float, width: float, left_wall: float, right_wall: float) -> list[BodySpec]:
    """A purple goal strip on the floor from x0 to x0 + width, walled in black at both ends."""
    x1 = x0 + width
    return [static_poly(((x0, 0), (x1, 0), (x1, STRIP), (x0, STRIP)), "goal"),
            static_poly(((x0 - 6, 0), (x0, 0), (x0, left_wall), (x0 - 6, left_wall))),
            static_poly(((x1, 0), (x1 + 6, 0), (x1 + 6, right_wall), (x1, right_wall)))]


def jar(role: str, x: float, width: float, height: float, dynamic: bool = True) -> BodySpec:
    """A U-shaped jar standing on the floor, centred at x (three convex pieces, one body)."""
    hw, t = width / 2, 5.0
    parts = (("poly", ((-hw, 0), (hw, 0), (hw, t), (-hw, t))),
             ("poly", ((-hw, t), (-hw + t, t), (-hw + t, height), (-hw, height))),
             ("poly", ((hw - t, t), (hw, t), (hw, height), (hw - t, height))))
    return BodySpec(role, parts, (float(x), 0.0), dynamic=dynamic)


def ledge_push(rng: np.random.Generator) -> list[BodySpec]:
    """Push the green ball off a high ledge into a bin on the floor."""
    top, edge, r = rng.uniform(90, 160), rng.uniform(70, 110), rng.uniform(8, 14)
    x0 = rng.uniform(edge + 15, edge + 70)
    width = rng.uniform(55, min(80, 244 - x0))
    return [shelf(0, edge, top), ball("green", edge - r - rng.uniform(5, 25), top + r, r),
            *floor_bin(x0, width, 22, 22)]


def ramp_roll(rng: np.random.Generator) -> list[BodySpec]:
    """Start the green ball down a ramp from its resting platform to a bin."""
    top, flat, foot, r = rng.uniform(50, 80), rng.uniform(30, 45), rng.uniform(110, 140), \
        rng.uniform(8, 13)
    x0 = foot + rng.uniform(15, 40)
    width = rng.uniform(60, min(85, 244 - x0))
    ramp = static_poly(((0, 0), (foot, 0), (flat, top), (0, top)))
    return [ramp, ball("green", flat / 2, top + r, r), *floor_bin(x0, width, STRIP, 50)]


def tip_bar(rng: np.random.Generator) -> list[BodySpec]:
    """Tip a standing green bar over onto a goal strip."""
    height, width = rng.uniform(60, 95), rng.uniform(8, 12)
    x = rng.uniform(50, 110)
    start = x + rng.uniform(0.45, 0.6) * height
    goal = static_poly(((start, 0), (start + 0.8 * height, 0), (start + 0.8 * height, STRIP),
                        (start, STRIP)), "goal")
    return [box("green", x, height / 2, width, height), goal]


def ball_in_cup(rng: np.random.Generator) -> list[BodySpec]:
    """Drop the green ball off a ledge onto a blue ball resting in a V-shaped cup."""
    top, edge, r = rng.uniform(110, 170), rng.uniform(60, 100), rng.uniform(8, 12)
    cx, half, depth = rng.uniform(edge + 45, edge + 100), rng.uniform(32, 42), rng.uniform(30, 40)
    cup = [static_poly(((cx - half - 8, depth), (cx - half, depth), (cx - 3, 0), (cx - 11, 0))),
           static_poly(((cx + half, depth), (cx + half + 8, depth), (cx + 11, 0), (cx + 3, 0)))]
    blue_r = rng.uniform(10, 13)
    return [shelf(0, edge, top), ball("green", edge - r - rng.uniform(5, 20), top + r, r),
            *cup, ball("goal", cx, blue_r, blue_r)]


def topple_tower(rng: np.random.Generator) -> list[BodySpec]:
    """Knock over a stack of gray boxes so the green ball on top lands in a bin."""
    x, side, count, r = rng.uniform(50, 100), rng.uniform(22, 30), int(rng.integers(2, 4)), \
        rng.uniform(8, 12)
    boxes = [box("dynamic", x, side * (i + 0.5), side, side) for i in range(count)]
    x0 = rng.uniform(x + 40, 170)
    width = rng.uniform(50, min(75, 244 - x0))
    return [*boxes, ball("green", x, count * side + r, r), *floor_bin(x0, width, 14, 14)]


def goal_drop(rng: np.random.Generator) -> list[BodySpec]:
    """Knock the blue goal ball off its ledge so it lands on the green ball held in a cup."""
    top, edge, blue_r = rng.uniform(110, 170), rng.uniform(60, 100), rng.uniform(9, 12)
    cx, half, depth = rng.uniform(edge + 45, edge + 100), rng.uniform(32, 42), rng.uniform(30, 40)
    cup = [static_poly(((cx - half - 8, depth), (cx - half, depth), (cx - 3, 0), (cx - 11, 0))),
           static_poly(((cx + half, depth), (cx + half + 8, depth), (cx + 11, 0), (cx + 3, 0)))]
    r = rng.uniform(10, 13)
    return [shelf(0, edge, top), ball("goal", edge - blue_r - rng.uniform(5, 20), top + blue_r,
                                      blue_r), *cup, ball("green", cx, r, r)]


def chain_shelves(rng: np.random.Generator) -> list[BodySpec]:
    """Two-stage chain: a gray ball falls from a high shelf onto a lower one and pushes green."""
    high, low = rng.uniform(180, 215), rng.uniform(90, 120)
    edge_high, edge_low = rng.uniform(40, 60), rng.uniform(110, 140)
    r_gray, r = rng.uniform(9, 13), rng.uniform(8, 11)
    x0 = rng.uniform(edge_low + 25, 185)
    width = rng.uniform(45, min(60, 244 - x0))
    return [shelf(0, edge_high, high),
            ball("dynamic", edge_high - r_gray - 4, high + r_gray, r_gray),
            shelf(edge_high + 10, edge_low, low),
            ball("green", edge_low - r - rng.uniform(8, 30), low + r, r),
            *floor_bin(x0, width, 20, 20)]


def jar_fill(rng: np.random.Generator) -> list[BodySpec]:
    """Get the green ball from its ledge into (or against) a blue dynamic jar on the floor."""
    top, edge, r = rng.uniform(100, 170), rng.uniform(60, 100), rng.uniform(8, 11)
    width, height = rng.uniform(50, 70), rng.uniform(28, 40)
    x = rng.uniform(edge + width / 2 + 30, 250 - width / 2)
    return [shelf(0, edge, top), ball("green", edge - r - rng.uniform(5, 25), top + r, r),
            jar("goal", x, width, height)]


def roll_to_blue(rng: np.random.Generator) -> list[BodySpec]:
    """Nudge the green ball off its platform down a slope to a blue ball in the far corner."""
    top, flat, r = rng.uniform(60, 110), rng.uniform(30, 50), rng.uniform(8, 12)
    slope = static_poly(((0, 0), (256, 0), (flat, top), (0, top)))
    blue_r = rng.uniform(12, 16)
    return [slope, ball("green", flat / 2, top + r, r),
            ball("goal", 256 - blue_r - 1, blue_r * 1.6, blue_r)]


def valley_escape(rng: np.random.Generator) -> list[BodySpec]:
    """The green ball rests in a valley; knock it over the far rim onto the goal beyond."""
    bottom, rim, depth, r = rng.uniform(70, 100), rng.uniform(5, 9), rng.uniform(70, 110), \
        rng.uniform(8, 11)
    left = static_poly(((0, 0), (bottom - 10, 0), (0, depth)))
    right = static_poly(((bottom + 10, 0), (bottom + 50, rim), (bottom + 60, rim),
                         (bottom + 60, 0)))
    x0 = bottom + 62 + rng.uniform(0, 20)
    width = rng.uniform(55, min(75, 244 - x0))
    return [left, right, ball("green", bottom, r + 1, r), *floor_bin(x0, width, STRIP, 40)]


TEMPLATES: dict[str, Callable[[np.random.Generator], list[BodySpec]]] = {
    fn.__name__: fn for fn in (ledge_push, ramp_roll, tip_bar, ball_in_cup,
                               topple_tower, goal_drop, chain_shelves, jar_fill, roll_to_blue,
                               valley_escape)
}
TEMPLATE_SEED = 20240601
BUILTIN_TEMPLATES = tuple(sorted(TEMPLATES))  # the fixed within / cross folds are over these
NOOP_CHECKED_VARIANTS = 10  # variants of a new template simulated with no action at registration


def register_template(name: str, build: Callable[[np.random.Generator], list[BodySpec]],
                      checked_variants: int = NOOP_CHECKED_VARIANTS) -> None:
    """Add a template of your own: `build(rng)` returns one variant's bodies (as the built-ins).

    Its variants are seeded like the built-ins' (`name:000` .. `name:099`) and are test-only:
    every fold of both splits holds them out, so the built-in folds stay as they are. Refused
    (ValueError, naming the template): a name in use or with ':', a variant without a green
    body, and a variant that doing nothing solves (checked on the first `checked_variants`).
    """
    if not is_plain_name(name) or name in TEMPLATES:
        raise ValueError(f"template name {name!r} is not a plain name (letters, digits, '_', "
                         "'-', '.'; it names files) or is in use")
    if type(checked_variants) is not int or not 1 <= checked_variants <= VARIANTS_PER_TEMPLATE:
        raise ValueError(f"template {name!r}: checked_variants={checked_variants!r} is not an "
                         f"integer in [1, {VARIANTS_PER_TEMPLATE}]")
    TEMPLATES[name] = build
    try:
        for variant in range(min(checked_variants, VARIANTS_PER_TEMPLATE)):
            try:
                space = build_space(make_puzzle(name, variant))
            except Exception as error:  # the user's build: name the template in one line
                message = f"{type(error).__name__}: {error}".splitlines()[0]
                raise ValueError(f"template {name!r}: variant {variant} cannot be built "
                                 f"({message})") from None
            if not any(s.collision_type == GREEN for b in space.bodies for s in b.shapes):
                raise ValueError(f"template {name!r}: variant {variant} has no green body")
            if attempt(space, None).solved:
                raise ValueError(f"template {name!r}: variant {variant} is solved by doing "
                                 "nothing (the green body must start off the goal)")
    except Exception:
        del TEMPLATES[name]
        raise


def make_puzzle(template: str, variant: int) -> Puzzle:
    """Variant `variant` of `template`, built from the fixed seed (template, variant)."""
    if template not in TEMPLATES:
        raise KeyError(f"unknown PHYRE-Lite template {template!r}; known: {sorted(TEMPLATES)}")
    if not 0 <= variant < VARIANTS_PER_TEMPLATE:
        raise KeyError(f"variant {variant} out of range [0, {VARIANTS_PER_TEMPLATE})")
    rng = np.random.default_rng((TEMPLATE_SEED, zlib.crc32(template.encode()), variant))
    return Puzzle(template, int(variant), tuple(TEMPLATES[template](rng)))


def parse_task_id(task_id: str) -> Puzzle:
    """`template:variant` -> the Puzzle."""
    template, _, variant = task_id.partition(":")
    if not variant.isdigit():
        raise KeyError(f"task id {task_id!r} is not 'template:variant'")
    return make_puzzle(template, int(variant))
