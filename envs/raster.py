"""Tiny numpy rasteriser for 2D scenes: anti-aliased discs and convex polygons."""

from __future__ import annotations

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
    side = canvas.shape[0] // supersample
    pooled = canvas.reshape(side, supersample, side, supersample, 3).mean(axis=(1, 3))
    return np.clip(pooled + 0.5, 0, 255).astype(np.uint8)


def _window(canvas: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Clip a pixel-space box to the canvas: returns slices and pixel-centre grids, or None."""
    side = canvas.shape[0]
    x0, y0 = np.maximum(np.floor(lo).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi).astype(int) + 1, side)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
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
    edges = np.roll(verts, -1, axis=0) - verts  # (V, 2)
    rel_x = xs[None] - verts[:, 0, None, None]
    rel_y = ys[None] - verts[:, 1, None, None]
    cross = edges[:, 0, None, None] * rel_y - edges[:, 1, None, None] * rel_x  # (V, h, w)
    inside = np.all(cross >= 0, axis=0) | np.all(cross <= 0, axis=0)
    canvas[sl][inside] = color


def draw_segment(canvas: np.ndarray, a, b, half_width: float, color) -> None:
    """Fill a thick segment (a rectangle around a-b, plus round caps)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    direction = b - a
    length = float(np.hypot(*direction))
    if length > 0:
        normal = np.array([-direction[1], direction[0]], np.float32) / length * half_width
        draw_polygon(canvas, [a + normal, b + normal, b - normal, a - normal], color)
    draw_disc(canvas, a, half_width, color)
    draw_disc(canvas, b, half_width, color)
