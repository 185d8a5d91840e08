"""What perception knows before it looks: the CAD models of the objects, and pose arithmetic.

    models = scene_models("peg_star_M_long")     # [board (upright, target hole), peg (free)]
    scene_models("peg_star_M_long", fixture=True) # ... and the reorientation fixture (upright)
    pose_error(estimate, truth, symmetries, centre)   # (translation [m], rotation [rad])

Model points are sampled on the same `cad.Part` print mesh the simulator renders. Poses are (7,)
arrays: position [m] + quaternion (x, y, z, w).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from sim.exceptions import PerceptionError


@dataclasses.dataclass(frozen=True)
class ObjectModel:
    """A known object to find.

    Attributes:
        key: its role ("board", "peg").
        points: (M, 3) points on its surface in the part frame [m]; normals: (M, 3) unit outward.
        prior: "upright" (flat on the table, yaw about z unknown) or "free" (any orientation).
        extent: (3,) size of the part's bounding box [m] (to pick the clusters that can be it).
        frames: named poses in the part frame (board holes "hole_<shape>"), (7,) each [m, xyzw].
        target: name of the frame that is the target (a board's target hole), or "".
    """

    key: str
    points: np.ndarray
    normals: np.ndarray
    prior: str
    extent: np.ndarray
    frames: dict = dataclasses.field(default_factory=dict)
    target: str = ""


PRIORS = ("upright", "free")


def model_from_part(
    key: str, part, prior: str, spacing: float = 0.0015, seed: int = 0, target: str = ""
) -> ObjectModel:
    """An ObjectModel of a `cad.part.Part` (its print mesh, the one the simulator renders), sampled
    with about one point per `spacing`**2 of surface [m]."""
    import trimesh

    if prior not in PRIORS:
        raise ParameterError(f"unknown prior {prior!r} for {key}; known: {', '.join(PRIORS)}")
    mesh = part.mesh()
    n_points = int(np.clip(mesh.area / spacing**2, 500, 400_000))
    points, faces = trimesh.sample.sample_surface(mesh, n_points, seed=seed)
    frames = {
        name: np.concatenate([np.asarray(f.position, float), np.asarray(f.quaternion, float)])
        for name, f in part.frames.items()
    }
    return ObjectModel(key, np.asarray(points), mesh.face_normals[faces], prior, mesh.extents.copy(), frames, target)


def scene_models(
    peg: str, clearance: float | None = None, spacing: float = 0.0015, seed: int = 0, fixture: bool = False
) -> list[ObjectModel]:
    """Models of the peg part named `peg` (an FMB peg such as "peg_star_M_long" or a sampled member
    such as "peg_star_s0_001") and of its board, whose target is the peg's hole, and with `fixture`
    of the reorientation fixture (key "fixture", upright; frames "pocket" and "top"). Raises
    PerceptionError naming FMB's pegs when `peg` is unknown."""
    from cad.board import DEFAULT_CLEARANCE
    from sim.objects import ObjectPool, board_for, fixture_part, peg_part, peg_spec

    spec = peg_spec(peg)
    if spec is None:
        known = ", ".join(sorted(s.part_name for s in ObjectPool.fmb().pegs))
        raise PerceptionError(f"unknown peg {peg!r}; known: {known} and sampled members peg_<family>_s<seed>_<index>")
    board, hole = board_for(spec, DEFAULT_CLEARANCE if clearance is None else clearance)
    models = [
        model_from_part("board", board, "upright", spacing, seed, target=hole),
        model_from_part("peg", peg_part(spec), "free", spacing, seed),
    ]
    if fixture:
        models.append(model_from_part("fixture", fixture_part(), "upright", spacing, seed))
    return models


def matrix_to_pose(T: np.ndarray) -> np.ndarray:
    """(4, 4) homogeneous transform -> (7,) pose [m, xyzw]."""
    return np.concatenate([T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_quat()])


def pose_to_matrix(pose) -> np.ndarray:
    """(7,) pose [m, xyzw] -> (4, 4) homogeneous transform."""
    pose = np.asarray(pose, float)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(pose[3:]).as_matrix()
    T[:3, 3] = pose[:3]
    return T


def end_flips(length: float) -> list[np.ndarray]:
    """(4, 4) part-frame maps that swap a prism's ends: half turns about x and about y through the
    middle of its `length` [m] (both: a section need not be symmetric about either axis)."""
    flips = []
    for axis in ("x", "y"):
        F = np.eye(4)
        F[:3, :3] = Rotation.from_euler(axis, np.pi).as_matrix()
        F[2, 3] = length
        flips.append(F)
    return flips


def pose_error(estimate, truth, symmetries=(0.0,), centre=(0.0, 0.0, 0.0)) -> tuple[float, float]:
    """(translation [m], rotation [rad]) between two (7,) poses.

    Translation is measured at `centre` (3,), a point in the part frame (a peg's section centroid,
    about which its symmetric turns are made); rotation is the smallest angle over the part's turns
    about its z axis by `symmetries` [rad] (a hexagon peg turned 60 deg is the same object).
    """
    est, tru = pose_to_matrix(estimate), pose_to_matrix(truth)
    p = np.append(np.asarray(centre, float), 1.0)
    translation = float(np.linalg.norm((est @ p)[:3] - (tru @ p)[:3]))
    R_est = Rotation.from_matrix(est[:3, :3])
    R_tru = Rotation.from_matrix(tru[:3, :3])
    angles = [((R_tru * Rotation.from_euler("z", s)).inv() * R_est).magnitude() for s in symmetries]
    return translation, float(min(angles))
