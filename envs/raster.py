"""Tiny numpy rasteriser for 2D scenes: anti-aliased discs and convex polygons."""

from __future__ import annotations

import math

import numpy as np

# CLEVRER's colour names with RGB values; "black" is reserved for static bodies.
PALETTE: dict[str, tuple[int, int, int]] = {
    "gray": (150, 150, 150),
    "red": (220, 50, 50),
    "blue": (50, 90, 230),
    "green": (40, 190, 70),
    "brown": (150, 100, 40),
    "cyan": (40, 210, 220),
    "purple": (150, 60, 200),
    "yellow": (240, 220, 40),
    "black": (20, 20, 20),
}
COLOR_NAMES = [c for c in PALETTE if c not in ("black",)]
BACKGROUND = (235, 235, 225)


def new_canvas(size: int, supersample: int) -> np.ndarray:
    """Float canvas (S*ss, S*ss, 3) filled with the background colour."""
    side = size * supersample
    canvas = np.empty((side, side, 3), np.float32)
    canvas[:] = BACKGROUND
    return canvas


def finish_canvas(canvas: np.ndarray, supersample: int) -> np.ndarray:
    """Box-filter the supersampled canvas down to uint8 (S, S, 3)."""
    pooled = sum(canvas[i::supersample, j::supersample]
                 for i in range(supersample) for j in range(supersample))
    pooled = pooled * (1.0 / supersample**2) + 0.5  # strided sums: 5x faster than mean(axis=(1, 3))
    return np.clip(pooled, 0, 255).astype(np.uint8)


def _window(canvas: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Clip a box to the canvas: (slices, xs (1, w), ys (h, 1) pixel centres), or None if empty."""
    side = canvas.shape[0]  # plain Python ints here: numpy scalar maths dominated small draws
    x0, y0 = max(math.floor(lo[0]), 0), max(math.floor(lo[1]), 0)
    x1, y1 = min(math.ceil(hi[0]) + 1, side), min(math.ceil(hi[1]) + 1, side)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    return (slice(y0, y1), slice(x0, x1)), xs, ys


def draw_disc(canvas: np.ndarray, center, radius: float, color) -> None:
    """Fill a disc given in canvas pixels (x right, y down)."""
    center = np.asarray(center, np.float32)
    win = _window(canvas, center - radius, center + radius)
    if win is None:
        return
    sl, xs, ys = win
    inside = (xs - center[0]) ** 2 + (ys - center[1]) ** 2 <= radius**2
    canvas[sl][inside] = color


def draw_polygon(canvas: np.ndarray, vertices, color) -> None:
    """Fill a convex polygon given by its vertices in canvas pixels (any winding)."""
    verts = np.asarray(vertices, np.float32)
    win = _window(canvas, verts.min(0), verts.max(0))
    if win is None:
        return
    sl, xs, ys = win
    edges = np.concatenate((verts[1:], verts[:1])) - verts  # (V, 2)
    rel_x = xs[None] - verts[:, 0, None, None]
    rel_y = ys[None] - verts[:, 1, None, None]
    cross = edges[:, 0, None, None] * rel_y - edges[:, 1, None, None] * rel_x  # (V, h, w)
    inside = np.all(cross >= 0, axis=0) | np.all(cross <= 0, axis=0)
    canvas[sl][inside] = color


def draw_segment(canvas: np.ndarray, a, b, half_width: float, color,
                 round_caps: bool = True) -> None:
    """Fill a thick segment: a rectangle around a-b, plus round caps unless told otherwise."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    direction = b - a
    length = float(np.hypot(*direction))
    if length > 0:
        normal = np.array([-direction[1], direction[0]], np.float32) / length * half_width
        draw_polygon(canvas, [a + normal, b + normal, b - normal, a - normal], color)
    if round_caps:
        draw_disc(canvas, a, half_width, color)
        draw_disc(canvas, b, half_width, color)
