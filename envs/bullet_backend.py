"""PyBullet (3D) backend: one DIRECT client per env, TinyRenderer camera, contacts and energy.

World units are metres with z up; the floor's top face is the plane z = 0. A fixed perspective
camera looks obliquely at the origin; pixels and bounding boxes are projections through the same
view and projection matrices that render the frame. The env connects its client on the first
reset (in the process that uses it), empties the world with resetSimulation on every reset (a seed
replays bit-identically) and disconnects in `close` (safe twice).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p

from .base import SceneEnv, check_flag, check_number, check_triple, object_record
from .raster import PALETTE

# CLEVRER's two materials: restitution and friction (Bullet multiplies the two bodies' values).
MATERIALS: dict[str, dict[str, float]] = {
    "rubber": {"restitution": 0.6, "lateral_friction": 0.8, "specular": 0.05},
    "metal": {"restitution": 0.85, "lateral_friction": 0.3, "specular": 1.0},
}
FLOOR_MATERIAL = {"restitution": 0.7, "lateral_friction": 0.3}
AABB_CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)


def quaternion_matrix(quaternion) -> np.ndarray:
    """Rotation matrix (3, 3) of a PyBullet quaternion (x, y, z, w)."""
    return np.array(p.getMatrixFromQuaternion(quaternion), np.float64).reshape(3, 3)


class BulletScene(SceneEnv):
    """Base for 3D scenes; subclasses implement `_populate(rng, options)` with `add_*` helpers.

    ## Arguments (every PyBullet scene)

    - `size`, `max_steps`, `render_mode`: as for every scene (see `SceneEnv`).
    - `gravity` (float, default `9.81`): gravity in m/s^2, pointing down (-z).
    - `physics_dt` (float, default `1 / 240`): Bullet step in seconds.
    - `frame_skip` (int, default `8`): physics steps per frame (30 fps with the defaults).
    - `camera_eye` (3 floats, default `(0.0, -5.5, 4.5)`; scenes set their own): camera
      position in metres.
    - `camera_target` (3 floats, default `(0.0, -0.2, 0.0)`; scenes set their own): point the
      camera looks at.
    - `fov` (float, default `45.0`): vertical field of view in degrees.
    - `shadow` (bool, default `False`): TinyRenderer shadows; must be a real bool.
    - `release_distance` (float, default `0.005`): metres a touching pair must part before a
      new contact between them counts as a new collision.

    ## Ground truth in `info`

    `reset` and every `step` return `info` with `frame` (frame index, 0 at reset), `states`
    (dict of float64 arrays over the K objects, the floor included, in object-id order:
    `position` (K, 3) centre of mass in metres, `velocity` (K, 3), `orientation` (K, 3) as
    Euler angles (roll, pitch, yaw), `angular_velocity` (K, 3) in the world frame, `pixel`
    (K, 2) the projected position as (column, row), `bbox` (K, 4) the projected world AABB as
    (left, top, right, bottom) in pixels, the whole frame for the floor), `energy` (floats
    `kinetic` = `translational` + `rotational`, `potential` = m g z, `total`) and `collisions`
    (one dict per object pair that came into contact during the frame after being apart:
    `frame`, `object_ids`, `impulse` (normal force x dt summed over the frame's substeps while
    in contact, N s), `position` ([x, y, z] metres), `pixel`). `reset` adds `objects` (one
    record per object: `id`, `shape`, `color`, `material`, `size`, `mass` (0 for static),
    `static`, its dimensions and principal `inertia`) and `meta` (`env_id`, `backend`,
    `render_size`, `max_steps`, `physics_dt`, `frame_skip`, `fps`, `gravity`, `camera`).
    """

    backend = "pybullet"

    def __init__(self, size: int = 64, max_steps: int = 64, render_mode: str | None = "rgb_array",
                 gravity: float = 9.81, physics_dt: float = 1 / 240, frame_skip: int = 8,
                 camera_eye=(0.0, -5.5, 4.5), camera_target=(0.0, -0.2, 0.0),
                 fov: float = 45.0, shadow: bool = False, release_distance: float = 0.005):
        super().__init__(size=size, max_steps=max_steps, render_mode=render_mode)
        self.gravity = check_number("gravity", gravity, -1000.0, 1000.0)
        self.physics_dt = check_number("physics_dt", physics_dt, 0.0, 0.1, open_low=True)
        self.frame_skip = check_number("frame_skip", frame_skip, 1, 1000, integer=True)
        self.shadow = check_flag("shadow", shadow)
        # a touching pair must part this far
        self.release_distance = check_number("release_distance", release_distance, 0.0, 1.0)
        self.camera = {"eye": check_triple("camera_eye", camera_eye),
                       "target": check_triple("camera_target", camera_target),
                       "up": [0.0, 0.0, 1.0], "fov_deg": check_number("fov", fov, 1.0, 179.0),
                       "near": 0.1, "far": 200.0}
        self._view = p.computeViewMatrix(self.camera["eye"], self.camera["target"],
                                         self.camera["up"])
        self._projection = p.computeProjectionMatrixFOV(fov, 1.0, self.camera["near"],
                                                        self.camera["far"])
        # OpenGL matrices come column-major: reshape then transpose to act on column vectors.
        self._world_to_clip = (np.array(self._projection).reshape(4, 4).T
                               @ np.array(self._view).reshape(4, 4).T)
        self._client: int | None = None
        self._body_ids: list[int] = []
        self._records: list[dict] = []

    # ---- scene building ----------------------------------------------------------------
    def _populate(self, rng: np.random.Generator, options: dict) -> None:
        raise NotImplementedError

    def _backend_reset(self, rng: np.random.Generator, options: dict) -> list[dict]:
        if self._client is None:  # one client per env, made in the process that uses it
            self._client = p.connect(p.DIRECT)
        p.resetSimulation(physicsClientId=self._client)
        p.setGravity(0.0, 0.0, -self.gravity, physicsClientId=self._client)
        p.setTimeStep(self.physics_dt, physicsClientId=self._client)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, numSolverIterations=50,
                                    physicsClientId=self._client)
        self._body_ids, self._records = [], []
        self._mass, self._inertia = np.zeros(0), np.zeros((0, 3))  # (K,), (K, 3); static: 0
        self._index_of: dict[int, int] = {}
        self._populate(rng, options)
        # bodies placed resting on one another are in contact from the start, not colliding
        p.performCollisionDetection(physicsClientId=self._client)
        self._touching: set[tuple[int, int]] = {
            pair for pair, (_, _, gap) in self._contacts().items() if gap < self.release_distance}
        return self._records

    def _add_body(self, record: dict, geometry: dict, position, velocity, orientation,
                  angular_velocity, material: dict, specular: float = 0.0) -> int:
        """Create one single-link body from `geometry` (createCollisionShape kwargs)."""
        client = self._client
        visual = dict(geometry)
        if "height" in visual:  # the visual cylinder calls its height `length`
            visual["length"] = visual.pop("height")
        rgba = [c / 255 for c in PALETTE[record["color"]]] + [1.0]
        body = p.createMultiBody(
            baseMass=record["mass"],
            baseCollisionShapeIndex=p.createCollisionShape(**geometry, physicsClientId=client),
            baseVisualShapeIndex=p.createVisualShape(**visual, rgbaColor=rgba,
                                                     specularColor=[specular] * 3,
                                                     physicsClientId=client),
            basePosition=list(position),
            baseOrientation=p.getQuaternionFromEuler(list(orientation)),
            physicsClientId=client)
        p.changeDynamics(body, -1, restitution=material["restitution"],
                         lateralFriction=material["lateral_friction"], linearDamping=0.0,
                         angularDamping=0.0, physicsClientId=client)
        p.resetBaseVelocity(body, list(velocity), list(angular_velocity), physicsClientId=client)
        mass, _, inertia = p.getDynamicsInfo(body, -1, physicsClientId=client)[:3]
        record["inertia"] = [float(v) for v in inertia]  # principal moments, body frame
        self._mass = np.append(self._mass, mass)
        self._inertia = np.concatenate([self._inertia, [inertia]])
        self._index_of[body] = len(self._records)
        self._body_ids.append(body)
        self._records.append(record)
        return record["id"]

    def _add_dynamic(self, shape: str, geometry: dict, size: float, position, velocity,
                     mass: float, color: str, material: str, orientation,
                     angular_velocity, **dims) -> int | None:
        object_id = self._new_id()
        if object_id is None:
            return None
        record = object_record(object_id, shape, color, material, size, mass, static=False,
                               **dims)
        return self._add_body(record, geometry, position, velocity, orientation,
                              angular_velocity, MATERIALS[material],
                              MATERIALS[material]["specular"])

    def add_sphere(self, position, velocity, radius: float, mass: float, color: str,
                   material: str = "rubber", orientation=(0, 0, 0),
                   angular_velocity=(0, 0, 0)) -> int | None:
        """Add a dynamic sphere; returns its object id (None when excluded)."""
        return self._add_dynamic("sphere", {"shapeType": p.GEOM_SPHERE, "radius": radius},
                                 2 * radius, position, velocity, mass, color, material,
                                 orientation, angular_velocity, radius=radius)

    def add_cube(self, position, velocity, side: float, mass: float, color: str,
                 material: str = "rubber", orientation=(0, 0, 0),
                 angular_velocity=(0, 0, 0)) -> int | None:
        """Add a dynamic cube of edge `side`; returns its object id (None when excluded)."""
        return self._add_dynamic("cube", {"shapeType": p.GEOM_BOX,
                                          "halfExtents": [side / 2] * 3},
                                 side, position, velocity, mass, color, material,
                                 orientation, angular_velocity, side=side)

    def add_cylinder(self, position, velocity, radius: float, height: float, mass: float,
                     color: str, material: str = "rubber", orientation=(0, 0, 0),
                     angular_velocity=(0, 0, 0)) -> int | None:
        """Add a dynamic cylinder (axis = body z); returns its object id (None when excluded)."""
        return self._add_dynamic("cylinder", {"shapeType": p.GEOM_CYLINDER, "radius": radius,
                                              "height": height},
                                 max(2 * radius, height), position, velocity, mass, color,
                                 material, orientation, angular_velocity, radius=radius,
                                 height=height)

    def add_floor(self, half_extent: float = 100.0, thickness: float = 0.2) -> int | None:
        """Add the static floor, a thin box whose top face is z = 0; it gets an id too."""
        object_id = self._new_id()
        if object_id is None:
            return None
        record = object_record(object_id, "floor", "black", "static", 2 * half_extent, 0.0,
                               static=True)
        geometry = {"shapeType": p.GEOM_BOX,
                    "halfExtents": [half_extent, half_extent, thickness / 2]}
        return self._add_body(record, geometry, (0, 0, -thickness / 2), (0, 0, 0), (0, 0, 0),
                              (0, 0, 0), FLOOR_MATERIAL)

    # ---- stepping and contacts -----------------------------------------------------------
    def _contacts(self) -> dict[tuple[int, int], list]:
        """Pairs (object index a < b) with contact points: [normal force, pressing points, gap]."""
        pairs: dict[tuple[int, int], list] = {}
        for point in p.getContactPoints(physicsClientId=self._client):
            a, b = sorted((self._index_of[point[1]], self._index_of[point[2]]))
            entry = pairs.setdefault((a, b), [0.0, [], np.inf])
            entry[2] = min(entry[2], point[8])  # index 8: contact distance (< 0: penetrating)
            if point[9] > 0.0:  # index 9: normal force
                entry[0] += point[9]
                entry[1].append(np.add(point[5], point[6]) / 2)
        return pairs

    def _still_touching(self, contacts: dict) -> set[tuple[int, int]]:
        """Pairs pressing now, or touching before and not yet apart by `release_distance`."""
        return {pair for pair, (force, _, gap) in contacts.items()
                if force > 0.0 or (pair in self._touching and gap < self.release_distance)}

    def _backend_advance(self) -> list[dict]:
        events: list[dict] = []
        ongoing: dict[tuple[int, int], dict] = {}  # pair -> its event begun in this frame
        for _ in range(self.frame_skip):
            p.stepSimulation(physicsClientId=self._client)
            contacts = self._contacts()
            touching = self._still_touching(contacts)
            for pair in touching:
                force, points, _ = contacts[pair]
                if pair not in self._touching:
                    position = np.mean(points, axis=0)
                    ongoing[pair] = {
                        "object_ids": [self._records[i]["id"] for i in pair], "impulse": 0.0,
                        "position": [float(v) for v in position],
                        "pixel": [float(v) for v in self.world_to_pixel(position[None])[0]]}
                    events.append(ongoing[pair])
                if pair in ongoing:
                    ongoing[pair]["impulse"] += force * self.physics_dt
            ongoing = {pair: e for pair, e in ongoing.items() if pair in touching}
            self._touching = touching
        return events

    # ---- ground truth --------------------------------------------------------------------
    def _clip(self, points) -> np.ndarray:
        """World points (M, 3) -> homogeneous clip coordinates (M, 4); w > 0 in front."""
        points = np.asarray(points, np.float64)
        return np.concatenate([points, np.ones((len(points), 1))], 1) @ self._world_to_clip.T

    def _clip_to_pixel(self, clip: np.ndarray) -> np.ndarray:
        ndc = clip[:, :2] / clip[:, 3:4]
        return np.stack([(ndc[:, 0] + 1) / 2 * self.size, (1 - ndc[:, 1]) / 2 * self.size], 1)

    def world_to_pixel(self, points) -> np.ndarray:
        """World points (M, 3) in metres -> pixels (M, 2) as (column, row) in the frame."""
        return self._clip_to_pixel(self._clip(points))

    def _bboxes(self) -> np.ndarray:
        """Projected world AABBs (K, 4) as (left, top, right, bottom) pixels; the whole frame for
        a box that reaches behind the camera (the floor)."""
        bounds = np.array([p.getAABB(b, physicsClientId=self._client) for b in self._body_ids])
        low, high = bounds[:, :1], bounds[:, 1:]  # (K, 1, 3) each
        corners = low + AABB_CORNERS * (high - low)  # (K, 8, 3)
        clip = self._clip(corners.reshape(-1, 3)).reshape(len(bounds), 8, 4)
        pixels = self._clip_to_pixel(clip.reshape(-1, 4)).reshape(len(bounds), 8, 2)
        boxes = np.concatenate([pixels.min(1), pixels.max(1)], axis=1)
        boxes[np.any(clip[..., 3] <= 0, axis=1)] = (0.0, 0.0, self.size, self.size)
        return boxes

    def _kinematics(self) -> tuple[np.ndarray, ...]:
        """Positions (K, 3), quaternions (K, 4), velocities (K, 3), angular velocities (K, 3)."""
        client = self._client
        poses = [p.getBasePositionAndOrientation(b, physicsClientId=client)
                 for b in self._body_ids]
        speeds = [p.getBaseVelocity(b, physicsClientId=client) for b in self._body_ids]
        return (np.array([x for x, _ in poses]), np.array([q for _, q in poses]),
                np.array([v for v, _ in speeds]), np.array([w for _, w in speeds]))

    def _backend_snapshot(self) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """States and energy of the current frame from one read of the bodies' kinematics."""
        kinematics = self._kinematics()
        return self._backend_states(kinematics), self._backend_energy(kinematics)

    def _backend_states(self, kinematics: tuple | None = None) -> dict[str, np.ndarray]:
        position, quaternion, velocity, angular_velocity = kinematics or self._kinematics()
        return {"position": position, "velocity": velocity,
                "orientation": np.array([p.getEulerFromQuaternion(q) for q in quaternion]),
                "angular_velocity": angular_velocity, "pixel": self.world_to_pixel(position),
                "bbox": self._bboxes()}

    def _backend_energy(self, kinematics: tuple | None = None) -> dict[str, float]:
        position, quaternion, velocity, angular_velocity = kinematics or self._kinematics()
        # a base's reported pose is its inertial frame: the centre of mass, axes along the
        # principal axes of `inertia` (bullet3 issue 3312), so w_l = R^T w
        rotations = np.array([quaternion_matrix(q) for q in quaternion])  # (K, 3, 3)
        local = np.einsum("kji,kj->ki", rotations, angular_velocity)  # (K, 3)
        return {"translational": float(0.5 * self._mass @ np.sum(velocity**2, axis=1)),
                "rotational": float(0.5 * np.sum(self._inertia * local**2)),
                "potential": float(self.gravity * self._mass @ position[:, 2])}

    def _backend_meta(self) -> dict[str, Any]:
        return {"physics_dt": self.physics_dt, "frame_skip": self.frame_skip,
                "fps": 1.0 / (self.physics_dt * self.frame_skip), "gravity": self.gravity,
                "camera": {"kind": "perspective (z up)", **self.camera}}

    def close(self):
        """Disconnect the physics client (safe to call more than once)."""
        super().close()
        if self._client is not None:
            p.disconnect(physicsClientId=self._client)
            self._client = None

    # ---- rendering -------------------------------------------------------------------------
    def _backend_render(self) -> np.ndarray:
        _, _, rgba, _, _ = p.getCameraImage(
            self.size, self.size, self._view, self._projection, shadow=int(self.shadow),
            lightDirection=[2.0, -1.0, 5.0], renderer=p.ER_TINY_RENDERER,
            flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=self._client)
        rgba = np.asarray(rgba, np.uint8).reshape(self.size, self.size, 4)
        return np.ascontiguousarray(rgba[:, :, :3])
