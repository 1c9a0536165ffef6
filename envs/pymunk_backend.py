"""Pymunk (2D) backend: world <-> pixel mapping, contact events, energy, rasteriser rendering.

World units are metres with y up; the square world of side `world_size` maps onto the frame.
Energy is computed here (Pymunk 7's `Body.kinetic_energy` omits the factor 1/2).

Counterfactual invariant: a scene's `_populate` draws *all* its random numbers before it adds the
first object, and adds objects in a fixed order; `reset(options={"exclude_ids": [k]})` then skips
object k (its id stays reserved), so every other object starts exactly as in the full scene.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pymunk
import pymunk.batch

from . import raster
from .base import ENERGY_TERMS, STATE_KEYS, SceneEnv, check_number, object_record

# one batched read of every body gives, per body, these six values in this order
KINEMATICS = (pymunk.batch.BodyFields.POSITION | pymunk.batch.BodyFields.ANGLE
              | pymunk.batch.BodyFields.VELOCITY | pymunk.batch.BodyFields.ANGULAR_VELOCITY)
X, Y, ANGLE, VX, VY, SPIN = range(6)
# an object's state row: its 18 values in STATE_KEYS order (3D vectors with z = 0)
STATE_COLUMNS = dict(zip(STATE_KEYS, (slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12),
                                      slice(12, 14), slice(14, 18))))
STATE_WIDTH = 18
# state columns that are kinematics values as they are: position, velocity, orientation, spin
COPIED_TO, COPIED_FROM = np.array([0, 1, 3, 4, 8, 11]), np.array([X, Y, VX, VY, ANGLE, SPIN])
# the pixel and bbox columns: world x, y, left, top, right, bottom, mapped to pixels
PIXELS, PIXEL_SOURCES = slice(12, 18), np.array([X, Y, X, Y, X, Y])


class PymunkScene(SceneEnv):
    """Base for 2D scenes; subclasses implement `_populate(rng, options)` with `add_*` helpers.

    An active variant sets `self.action_space` in `__init__` and calls `apply_force` from
    `_apply_action`; the force then acts on every physics substep of the coming frame.

    ## Arguments (every Pymunk scene)

    - `size`, `max_steps`, `render_mode`: as for every scene (see `SceneEnv`).
    - `world_size` (float, default `10.0`): side in metres of the square world the frame shows.
    - `physics_dt` (float, default `1 / 240`): Pymunk step in seconds.
    - `frame_skip` (int, default `8`): physics steps per frame (30 fps with the defaults).
    - `supersample` (int, default `2`): anti-aliasing factor of the rasteriser.
    - `gravity` (float, default `0.0`): m/s^2 pointing down; each scene fixes its own.

    ## Ground truth in `info`

    `reset` and every `step` return `info` with `frame` (frame index, 0 at reset), `states`
    (dict of float64 arrays over the K objects, static ones included, in object-id order:
    `position` (K, 3) and `velocity` (K, 3) in metres with z = 0, `orientation` (K, 3) and
    `angular_velocity` (K, 3) as (0, 0, angle) and (0, 0, spin) in radians, `pixel` (K, 2)
    as (column, row) and `bbox` (K, 4) as (left, top, right, bottom) in frame pixels),
    `energy` (floats `kinetic` = `translational` + `rotational`, `potential` = m g y summed
    over dynamic bodies, `total`) and `collisions` (one dict per object pair that made first
    contact during the frame: `frame`, `object_ids` (sorted pair), `impulse` (total impulse
    magnitude, N s), `position` ([x, y, 0] metres), `pixel`). `reset` adds `objects` (one
    record per object: `id`, `shape`, `color`, `material`, `size`, `mass` (0 for static),
    `static`, and its dimensions and `inertia`) and `meta` (`env_id`, `backend`,
    `render_size`, `max_steps`, `physics_dt`, `frame_skip`, `fps`, `world_size`, `gravity`,
    `camera`).
    """

    backend = "pymunk"

    def __init__(self, size: int = 64, max_steps: int = 64, render_mode: str | None = "rgb_array",
                 world_size: float = 10.0, gravity: float = 0.0, physics_dt: float = 1 / 240,
                 frame_skip: int = 8, supersample: int = 2):
        super().__init__(size=size, max_steps=max_steps, render_mode=render_mode)
        self.world_size = check_number("world_size", world_size, 1.0, 1000.0)
        self.gravity = check_number("gravity", gravity, -1000.0, 1000.0)
        self.physics_dt = check_number("physics_dt", physics_dt, 0.0, 0.1, open_low=True)
        self.frame_skip = check_number("frame_skip", frame_skip, 1, 1000, integer=True)
        self.supersample = check_number("supersample", supersample, 1, 8, integer=True)
        self.space: pymunk.Space | None = None
        self._bodies: list[pymunk.Body] = []
        self._shapes: list[pymunk.Shape] = []
        self._events: list[dict] = []
        self._forces: list[tuple[pymunk.Body, tuple[float, float]]] = []
        self._tethers: list[tuple[tuple[float, float], pymunk.Body]] = []
        self._static_canvas: np.ndarray | None = None
        self._batch = pymunk.batch.Buffer()  # reused for every batched read of the bodies

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and copy without the batch buffer (C memory); the copy makes its own."""
        return {key: value for key, value in self.__dict__.items() if key != "_batch"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _batch=pymunk.batch.Buffer())

    # ---- scene building ----------------------------------------------------------------
    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        """Add the scene's objects; draw every random number before the first `add_*` call."""
        raise NotImplementedError

    def _backend_reset(self, rng: np.random.Generator, options: dict) -> list[dict]:
        self.space = pymunk.Space()
        self.space.gravity = (0.0, -self.gravity)
        self.space.iterations = 30
        self.space.on_collision(post_solve=self._on_post_solve)
        self._bodies, self._shapes, self._records = [], [], []
        self._forces, self._tethers, self._static_canvas = [], [], None
        self._populate(rng, options)
        self._index_bodies()
        return self._records

    def _register(self, body: pymunk.Body, shape: pymunk.Shape, record: dict) -> None:
        shape.object_index = len(self._records)
        self.space.add(*(() if body is self.space.static_body else (body,)), shape)
        self._bodies.append(body)
        self._shapes.append(shape)
        self._records.append(record)

    def add_ball(self, position, velocity, radius: float, mass: float, color: str,
                 material: str = "rubber", elasticity: float = 1.0, friction: float = 0.0,
                 angular_velocity: float = 0.0) -> int | None:
        """Add a dynamic disc; returns its object id (None when excluded)."""
        object_id = self._new_id()
        if object_id is None:
            return None
        body = pymunk.Body(mass, pymunk.moment_for_circle(mass, 0, radius))
        body.position, body.velocity = tuple(position), tuple(velocity)
        body.angular_velocity = angular_velocity
        shape = pymunk.Circle(body, radius)
        shape.elasticity, shape.friction = elasticity, friction
        self._register(body, shape, object_record(object_id, "sphere", color, material,
                                                  2 * radius, mass, static=False, radius=radius,
                                                  inertia=body.moment))
        return object_id

    def add_box(self, position, velocity, width: float, height: float, mass: float, color: str,
                material: str = "rubber", elasticity: float = 0.5, friction: float = 0.5,
                angle: float = 0.0, angular_velocity: float = 0.0) -> int | None:
        """Add a dynamic box; returns its object id (None when excluded)."""
        object_id = self._new_id()
        if object_id is None:
            return None
        body = pymunk.Body(mass, pymunk.moment_for_box(mass, (width, height)))
        body.position, body.velocity, body.angle = tuple(position), tuple(velocity), angle
        body.angular_velocity = angular_velocity
        shape = pymunk.Poly.create_box(body, (width, height))
        shape.elasticity, shape.friction = elasticity, friction
        self._register(body, shape, object_record(object_id, "cube", color, material,
                                                  max(width, height), mass, static=False,
                                                  width=width, height=height,
                                                  inertia=body.moment))
        return object_id

    def add_wall(self, a, b, thickness: float = 0.2, elasticity: float = 1.0,
                 friction: float = 0.0) -> int | None:
        """Add a static segment (wall, floor, ramp); static objects get ids too."""
        object_id = self._new_id()
        if object_id is None:
            return None
        shape = pymunk.Segment(self.space.static_body, tuple(a), tuple(b), thickness / 2)
        shape.elasticity, shape.friction = elasticity, friction
        self._register(self.space.static_body, shape,
                       object_record(object_id, "wall", "black", "static", thickness, 0.0, True,
                                     thickness=thickness, length=np.hypot(*np.subtract(b, a))))
        return object_id

    def add_border(self, elasticity: float = 1.0, friction: float = 0.0) -> None:
        """Four walls along the edges of the world."""
        w = self.world_size
        for a, b in (((0, 0), (w, 0)), ((w, 0), (w, w)), ((w, w), (0, w)), ((0, w), (0, 0))):
            self.add_wall(a, b, thickness=0.4, elasticity=elasticity, friction=friction)

    def hang(self, object_id: int, pivot) -> None:
        """Hang a dynamic object from a fixed world pivot on a rigid, massless string."""
        body = self.body_of(object_id)
        joint = pymunk.PinJoint(self.space.static_body, body, tuple(pivot), (0.0, 0.0))
        self.space.add(joint)
        self._tethers.append((tuple(pivot), body))

    def body_of(self, object_id: int) -> pymunk.Body:
        """The Pymunk body of a dynamic object id (ValueError for unknown or static ids)."""
        for body, record in zip(self._bodies, self._records):
            if record["id"] == object_id and not record["static"]:
                return body
        raise ValueError(f"no dynamic object with id {object_id} in this scene")

    def apply_force(self, object_id: int, force) -> None:
        """Push a dynamic object's centre with a world-frame force (newtons) for the next frame."""
        self._forces.append((self.body_of(object_id), (float(force[0]), float(force[1]))))

    # ---- stepping and contacts -----------------------------------------------------------
    def _on_post_solve(self, arbiter: pymunk.Arbiter, space: pymunk.Space, data: Any) -> None:
        if not arbiter.is_first_contact:
            return
        shape_a, shape_b = arbiter.shapes
        points = arbiter.contact_point_set.points
        if points:
            position = np.mean([(p.point_a + p.point_b) / 2 for p in points], axis=0)
        else:
            position = (np.array(shape_a.body.position) + np.array(shape_b.body.position)) / 2
        ids = sorted((self._records[shape_a.object_index]["id"],
                      self._records[shape_b.object_index]["id"]))
        self._events.append({"object_ids": ids, "impulse": float(arbiter.total_impulse.length),
                             "position": [float(position[0]), float(position[1]), 0.0],
                             "pixel": [float(v) for v in self.world_to_pixel(position)]})

    def _backend_advance(self) -> list[dict]:
        self._events = []
        for _ in range(self.frame_skip):
            for body, force in self._forces:  # Pymunk clears forces after every step
                body.apply_force_at_world_point(force, body.local_to_world(body.center_of_gravity))
            self.space.step(self.physics_dt)
        self._forces = []
        return self._events

    # ---- ground truth --------------------------------------------------------------------
    def world_to_pixel(self, point) -> np.ndarray:
        """World (x, y) in metres -> pixel (column, row) in the rendered frame."""
        scale = self.size / self.world_size
        return np.array([point[0] * scale, self.size - point[1] * scale], np.float64)

    def _index_bodies(self) -> None:
        """Per-episode constants that turn batched reads of the bodies into ground truth.

        Static segments never move, so their state rows are computed here once. Adding -0.0 and
        multiplying by -1 are exact, so every value has the bits of the per-body Pymunk reads it
        replaces (Pymunk's AABB of a circle is its centre -+ the radius).
        """
        dynamic = [i for i, record in enumerate(self._records) if not record["static"]]
        bodies = [self._bodies[i] for i in dynamic]
        shapes = [self._shapes[i] for i in dynamic]
        self._batch.clear()
        pymunk.batch.get_space_bodies(self.space, pymunk.batch.BodyFields.BODY_ID, self._batch)
        batch_ids = np.frombuffer(self._batch.int_buf(), np.uintp).tolist()
        starts = 6 * np.array([batch_ids.index(body.id) for body in bodies], np.intp)
        self._kinematics_from = starts[:, None] + np.arange(6)  # (D, 6) into a flat read
        self._dynamic_rows = np.array(dynamic, np.intp)
        radii = [shape.radius if isinstance(shape, pymunk.Circle) else 0.0 for shape in shapes]
        self._pixel_offsets = np.array([(-0.0, -0.0, -r, r, r, -r) for r in radii]).reshape(-1, 6)
        self._polygon_rows = [row for row, shape in enumerate(shapes)
                              if not isinstance(shape, pymunk.Circle)]
        self._polygons = [shapes[row] for row in self._polygon_rows]
        self._half_masses = np.array([0.5 * body.mass for body in bodies])
        self._half_moments = np.array([0.5 * body.moment for body in bodies])
        self._weights = np.array([body.mass * self.gravity for body in bodies])
        scale = self.size / self.world_size
        self._pixel_scale = np.array([scale, -scale] * 3)  # y down: size - y * scale
        self._pixel_shift = np.array([-0.0, self.size] * 3)
        self._static_table = np.zeros((len(self._records), STATE_WIDTH))
        for row, record in enumerate(self._records):
            if record["static"]:
                segment = self._shapes[row]
                centre = ((segment.a.x + segment.b.x) / 2, (segment.a.y + segment.b.y) / 2)
                self._static_table[row, :2] = centre
                self._static_table[row, PIXELS] = self._to_pixels(np.array([*centre,
                                                                             *aabb(segment)]))

    def _to_pixels(self, world: np.ndarray) -> np.ndarray:
        """World (..., 6: x, y, left, top, right, bottom) -> the pixel and bbox columns."""
        return world * self._pixel_scale + self._pixel_shift

    def _backend_snapshot(self) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        """Kinematics (D, 6) of the dynamic objects, in object order, and the polygons' AABBs."""
        self._batch.clear()
        pymunk.batch.get_space_bodies(self.space, KINEMATICS, self._batch)
        every_body = np.frombuffer(self._batch.float_buf(), np.float64)
        return every_body.take(self._kinematics_from), [aabb(shape) for shape in self._polygons]

    def _backend_ground_truth(self, snapshots: list) -> tuple[dict[str, np.ndarray],
                                                              dict[str, np.ndarray]]:
        kinematics = np.array([k for k, _ in snapshots])  # (T, D, 6)
        table = np.repeat(self._static_table[None], len(snapshots), axis=0)  # (T, K, 18)
        table[:, self._dynamic_rows[:, None], COPIED_TO] = kinematics[..., COPIED_FROM]
        world = kinematics[..., PIXEL_SOURCES] + self._pixel_offsets
        if self._polygons:
            world[:, self._polygon_rows, 2:] = [bounds for _, bounds in snapshots]
        table[:, self._dynamic_rows, PIXELS] = self._to_pixels(world)
        states = {key: np.ascontiguousarray(table[..., columns])
                  for key, columns in STATE_COLUMNS.items()}
        return states, self._energy_terms(kinematics)

    def _energy_terms(self, kinematics: np.ndarray) -> dict[str, np.ndarray]:
        """Translational, rotational and potential energy (T,) from kinematics (T, D, 6).

        Each sum runs body by body in object order from 0.0 (a cumulative sum, not numpy's
        pairwise one), and the spin is squared by libm's pow, as Python's `**` does.
        """
        count, bodies = kinematics.shape[:2]
        vx, vy, spin, y = (kinematics[..., column] for column in (VX, VY, SPIN, Y))
        per_body = np.zeros((3, count, bodies + 1))
        per_body[0, :, 1:] = self._half_masses * (vx * vx + vy * vy)
        per_body[1, :, 1:] = self._half_moments * np.float_power(spin, 2)
        per_body[2, :, 1:] = self._weights * y
        sums = np.cumsum(per_body, axis=2)[..., -1]
        return dict(zip(ENERGY_TERMS, sums))

    def _backend_meta(self) -> dict[str, Any]:
        return {"physics_dt": self.physics_dt, "frame_skip": self.frame_skip,
                "fps": 1.0 / (self.physics_dt * self.frame_skip), "world_size": self.world_size,
                "gravity": self.gravity,
                "camera": {"projection": "orthographic", "view": "top-down", "x": "right",
                           "y": "up"}}

    def _backend_close(self) -> None:
        self.space = None

    # ---- rendering -------------------------------------------------------------------------
    def _to_canvas(self, point) -> np.ndarray:
        """World (x, y) -> supersampled canvas pixel (x right, y down)."""
        scale = self.size * self.supersample / self.world_size
        return np.array([point[0] * scale, (self.world_size - point[1]) * scale])

    def _draw_shape(self, canvas: np.ndarray, body: pymunk.Body, shape: pymunk.Shape,
                    color: tuple[int, int, int]) -> None:
        """Draw one shape of a body into the supersampled canvas."""
        scale = self.size * self.supersample / self.world_size
        if isinstance(shape, pymunk.Circle):
            center = self._to_canvas(body.position)
            radius = shape.radius * scale
            raster.draw_disc(canvas, center, radius, color)
            # a darker mark off-centre makes rotation visible
            mark = center + 0.55 * radius * np.array([math.cos(body.angle), -math.sin(body.angle)])
            raster.draw_disc(canvas, mark, 0.25 * radius, tuple(0.55 * np.array(color)))
        elif isinstance(shape, pymunk.Poly):
            verts = [self._to_canvas(body.local_to_world(v)) for v in shape.get_vertices()]
            raster.draw_polygon(canvas, verts, color)
        elif isinstance(shape, pymunk.Segment):
            raster.draw_segment(canvas, self._to_canvas(shape.a), self._to_canvas(shape.b),
                                shape.radius * scale, color)

    def _static_layer(self) -> np.ndarray:
        """Background plus static bodies, drawn once per reset (canvas (S*ss, S*ss, 3))."""
        if self._static_canvas is None:
            canvas = raster.new_canvas(self.size, self.supersample)
            for body, shape, record in zip(self._bodies, self._shapes, self._records):
                if record["static"]:
                    self._draw_shape(canvas, body, shape, raster.PALETTE[record["color"]])
            self._static_canvas = canvas
        return self._static_canvas

    def _backend_render(self) -> np.ndarray:
        canvas = self._static_layer().copy()
        string_width = max(0.5, 0.03 * self.size * self.supersample / self.world_size)
        for pivot, body in self._tethers:
            raster.draw_segment(canvas, self._to_canvas(pivot), self._to_canvas(body.position),
                                string_width, raster.PALETTE["gray"], round_caps=False)
        for body, shape, record in zip(self._bodies, self._shapes, self._records):
            if not record["static"]:
                self._draw_shape(canvas, body, shape, raster.PALETTE[record["color"]])
        return raster.finish_canvas(canvas, self.supersample)


def aabb(shape: pymunk.Shape) -> tuple[float, float, float, float]:
    """World AABB of a shape, recomputed now, as (left, top, right, bottom)."""
    left, bottom, right, top = shape.cache_bb()
    return left, top, right, bottom
