"""2D scenes on Pymunk: each one only says what is in the world (the backend does the rest)."""

from __future__ import annotations

import numpy as np

from envs.pymunk_backend import PymunkScene
from envs.raster import COLOR_NAMES

MATERIAL_ELASTICITY = {"rubber": 0.6, "metal": 0.9}


def sample_separated(rng: np.random.Generator, radii, low: float, high: float,
                     gap: float = 0.1, tries: int = 200) -> np.ndarray:
    """Positions (K, 2) in [low, high]^2 whose discs of the given radii do not overlap."""
    positions: list[np.ndarray] = []
    for radius in radii:
        for _ in range(tries):
            candidate = rng.uniform(low + radius, high - radius, size=2)
            if all(np.hypot(*(candidate - p)) > radius + r + gap
                   for p, r in zip(positions, radii)):
                break
        positions.append(candidate)
    return np.array(positions)


class Billiards(PymunkScene):
    """Balls of varied mass, size and colour on a frictionless walled table, no gravity.

    `elastic=True`: every contact has restitution 1 (energy is conserved); `elastic=False`:
    restitution follows each ball's material, so energy drops exactly at collisions. Initial
    velocities are aimed at other balls so that most episodes hold collisions.
    """

    def __init__(self, num_balls: tuple[int, int] = (3, 6), elastic: bool = True,
                 speed: tuple[float, float] = (4.0, 9.0), **kwargs):
        super().__init__(gravity=0.0, **kwargs)
        self.num_balls = tuple(num_balls)
        self.elastic = bool(elastic)
        self.speed = tuple(speed)

    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        count = int(rng.integers(self.num_balls[0], self.num_balls[1] + 1))
        radii = rng.uniform(0.45, 0.9, size=count)
        densities = rng.uniform(0.5, 2.0, size=count)
        colors = rng.choice(COLOR_NAMES, size=count)
        materials = rng.choice(list(MATERIAL_ELASTICITY), size=count)
        positions = sample_separated(rng, radii, 0.3, self.world_size - 0.3)
        targets = rng.integers(0, count, size=count)
        speeds = rng.uniform(*self.speed, size=count)
        jitter = rng.normal(0.0, 0.25, size=count)
        spins = rng.uniform(-2.0, 2.0, size=count)
        wall_elasticity = 1.0 if self.elastic else 0.9
        self.add_border(elasticity=wall_elasticity)
        for i in range(count):
            aim = positions[targets[i]] - positions[i]
            if targets[i] == i or not np.any(aim):
                aim = self.world_size / 2 - positions[i] + 1e-3
            angle = np.arctan2(aim[1], aim[0]) + jitter[i]
            velocity = speeds[i] * np.array([np.cos(angle), np.sin(angle)])
            elasticity = 1.0 if self.elastic else MATERIAL_ELASTICITY[materials[i]]
            mass = float(densities[i] * np.pi * radii[i] ** 2)
            self.add_ball(positions[i], velocity, radii[i], mass, str(colors[i]),
                          material=str(materials[i]), elasticity=elasticity,
                          angular_velocity=float(spins[i]))
