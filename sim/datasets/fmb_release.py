"""FMB's released trajectories (`.npy`, one pickled dict per file): reading and converting them to
our episode keys. `sim.datasets.fmb_import` writes them as one episode per primitive segment, one
store per primitive (OUT/<primitive>/, as `fmb sim stages` writes them).

Source format, N steps at 10 Hz, as FMB's own code writes and reads it (rail-berkeley/fmb:
`fmb_dataset_builder/*/*_dataset_builder.py` read the files with `np.load(p, allow_pickle=True).item()`;
`robot_infra/envs/franka_fmb_env.py` and `robot_infra/robot_servers/franka_server.py` recorded them;
`ResNet/src/dataloader.py` gives the stored dtypes)::

    obs/side_1|side_2|wrist_1|wrist_2  (N, 256, 256, 3) uint8 BGR (RealSense `rs.format.bgr8`)
    obs/<camera>_depth   (N, 256, 256) uint16, RealSense z16 units, aligned to the colour image
    obs/tcp_pose         (N, 7) position [m] + quaternion xyzw (scipy) of libfranka's O_T_EE: base frame
    obs/tcp_vel          (N, 6) zero Jacobian @ dq: linear [m/s] + angular [rad/s], base frame
    obs/tcp_force, obs/tcp_torque  (N, 3) libfranka's K_F_ext_hat_K: the external wrench on the end
                         effector [N], [N m], in the end-effector (stiffness) frame
    obs/q, obs/dq        (N, 7) [rad], [rad/s]
    obs/jacobian         (N, 6, 7) zero Jacobian (base frame)
    obs/gripper_pose     (N,) the gripper command state: 0 open, 1 closed (no width is recorded)
    actions (or action)  (N, 7) [dx, dy, dz, droll, dpitch, dyaw] / (0.06 m, 0.25 rad) + gripper 0/1
    primitive            (N,) str per step: grasp, place_on_fixture, regrasp, rotate, insert, move_up, go_to_board
    object_info          {"shape": 1-9, "color": 1-8, "length": "L"|"S", "size": "L"|"M"|"S"} (single object)
    object_id            (N,) int 1-4 per step (multi-object files, under board_<k>/)

File names carry the labels too: `{shape}_{size}_{length}_{color}_{orientation}_{distractor}_...npy`,
`insert_only_?_{shape}_{size}_{length}_{color}_...npy`, and `board_<k>/?_{object}_...npy`.

Conversion into our keys (`sim.observation`, `sim.store`), exactly:

    obs/tcp_pose    <- obs/tcp_pose, quaternion normalised (units, base frame and xyzw order are ours)
    obs/tcp_vel     <- obs/tcp_vel, unchanged
    obs/wrench      <- [tcp_force, tcp_torque], unchanged: FMB's end-effector frame (Franka Desk's hand
                       TCP) is taken as our TCP frame, and both are the external wrench on the hand
    obs/q, obs/dq   <- unchanged
    obs/gripper     <- obs/gripper_dist [m] where a file has it, else GRIPPER_OPEN * (1 - gripper_pose):
                       0.09 m open (FMB's opening), 0 closed (the closed width is not recorded)
    obs/rgb/<cam>   <- BGR -> RGB
    obs/depth/<cam> <- raw * depth_scale [m], float32 (only with `depth`; default 1 mm per unit)
    obs/jacobian    <- unchanged (T, 6, 7)
    action[:3]      <- actions[:3] * 0.06 [m], base frame
    action[3:6]     <- rotation vector [rad] of Rotation.from_euler("xyz", actions[3:6] * 0.25), base frame
                       (FMB's robot applies it as `from_euler("xyz", a) * current`, a base-frame rotation)
    action[6]       <- actions[6] (1 = close, as ours)

With `action_units="si"` the actions are taken as metres and radians already (no 0.06/0.25 scaling).
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from cad.fmb_reference import COLOURS
from cad.shapes import FMB_SHAPES
from fmb_core.errors import check_choice, check_range
from sim import observation as ob
from sim.exceptions import DataFormatError

FPS = 10.0
"""FMB's control rate [Hz]."""
CAMERAS = ("side_1", "side_2", "wrist_1", "wrist_2")
SKILLS = ("grasp", "place_on_fixture", "regrasp", "rotate", "insert")
PRIMITIVES = (*SKILLS, "move_up", "go_to_board")
GRIPPER_OPEN = 0.09
"""FMB's gripper opening [m] (franka_server.py `open`: MoveActionGoal width 0.09)."""
ACTION_SCALE = np.array([0.06, 0.06, 0.06, 0.25, 0.25, 0.25])
"""FMB's action bounds [m, rad] (franka_fmb_env.py `action_space.high`); stored actions are divided by them."""
ACTION_UNITS = ("normalized", "si")
SIZES = {"L": "L", "M": "M", "S": "S"}
LENGTHS = {"L": "long", "S": "short"}
BOARD_OBJECTS = {
    1: {1: "purple", 2: "blue", 3: "yellow", 4: "green"},
    2: {1: "green", 2: "brown", 3: "blue", 4: "red"},
    3: {1: "green", 2: "blue", 3: "purple", 4: "red"},
}
"""Colours of the multi-object boards' parts by board and object id (fmb_dataset_builder/fmb_dataset)."""
STATE_KEYS = {
    "obs/tcp_pose": (7,),
    "obs/tcp_vel": (6,),
    "obs/tcp_force": (3,),
    "obs/tcp_torque": (3,),
    "obs/q": (7,),
    "obs/dq": (7,),
    "obs/gripper_pose": (),
}
"""Required per-step arrays and their shapes after the step axis."""
OPTIONAL_KEYS = (
    *(f"obs/{c}" for c in CAMERAS),
    *(f"obs/{c}_depth" for c in CAMERAS),
    "obs/jacobian",
    "obs/gripper_dist",
    "object_info",
    "object_id",
)
"""Keys read when present; any other key is reported and skipped."""


@dataclasses.dataclass(frozen=True)
class FmbImportConfig:
    """What to import from FMB's release.

    Attributes:
        primitives: primitive segments to keep (default the five skills; PRIMITIVES has all seven).
        cameras: cameras whose RGB images are imported (of CAMERAS); () for none.
        depth: also import the depth images, as float32 metres.
        depth_scale: metres per raw depth unit [m] (RealSense default 0.001).
        action_units: "normalized" (FMB's release: divided by 0.06 m / 0.25 rad) or "si".
        skip_bad: skip (and count) malformed files instead of stopping at the first.
        min_steps: shorter segments are left out (a stray step of another primitive).
    """

    primitives: tuple[str, ...] = SKILLS
    cameras: tuple[str, ...] = CAMERAS
    depth: bool = False
    depth_scale: float = 0.001
    action_units: str = "normalized"
    skip_bad: bool = False
    min_steps: int = 2

    def __post_init__(self):
        for p in self.primitives:
            check_choice("primitive", p, PRIMITIVES)
        for c in self.cameras:
            check_choice("camera", c, CAMERAS)
        check_range("depth_scale", self.depth_scale, 1e-6, 1.0, unit="mm", scale=1e3)
        check_choice("action_units", self.action_units, ACTION_UNITS)
        check_range("min_steps", self.min_steps, 1, 10_000)


class Segment(NamedTuple):
    """Steps [start, stop) of one primitive on one object."""

    start: int
    stop: int
    primitive: str
    object_id: int | None


# -- reading ------------------------------------------------------------------------------------
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, scalars and plain containers only: an .npy file cannot run code."""

    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays and plain values)")
        return super().find_class(module, name)


def load_fmb_file(path: str | Path) -> dict:
    """The dict in one FMB `.npy` file (`np.load(path, allow_pickle=True).item()`, but unpickling only
    numpy arrays and plain values).

    Raises:
        DataFormatError: naming the file, when it is not an .npy file holding a dict.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            _, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            if not dtype.hasobject:
                raise DataFormatError(f"{path}: holds a {dtype} array, expected a pickled dict (FMB's format)")
            value = _NumpyOnlyUnpickler(f).load()
    except DataFormatError:
        raise
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as e:
        raise DataFormatError(f"{path}: not a readable FMB .npy file ({e})") from None
    value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(value, dict):
        raise DataFormatError(f"{path}: holds a {type(value).__name__}, expected a dict (FMB's format)")
    return value


def array_of(raw: dict, key: str, path: Path, steps: int | None, tail: tuple, kinds: str = "fiub") -> np.ndarray:
    """raw[key] checked: numbers (dtype kind in `kinds`) of shape (steps, *tail), finite.

    Raises:
        DataFormatError: naming the file `path` and `key` (missing, of the wrong kind or shape, NaN/inf).
    """
    if key not in raw:
        raise DataFormatError(f"{path}: missing key {key!r}")
    a = np.asarray(raw[key])
    if a.dtype.kind not in kinds or a.ndim == 0:
        raise DataFormatError(f"{path}: {key!r} is {a.dtype} {a.shape}, expected numbers of shape (N, {tail})")
    fits = a.shape[1:] == tail and (steps is None or len(a) == steps)
    if not fits:
        want = f"({steps if steps is not None else 'N'}, {', '.join(map(str, tail))})".replace(", )", ")")
        raise DataFormatError(f"{path}: {key!r} has shape {a.shape}, expected {want}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataFormatError(f"{path}: {key!r} holds NaN or inf")
    return a


def convert(raw: dict, path: Path, config: FmbImportConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """Our episode arrays for a whole FMB trajectory (see the module docstring), and the file's keys
    that are not imported (unknown, or cameras not asked for).

    Raises:
        DataFormatError: naming the file and the missing or malformed key.
    """
    action_key = "actions" if "actions" in raw else "action"
    actions = array_of(raw, action_key, path, None, (7,))
    steps = len(actions)
    if steps == 0:
        raise DataFormatError(f"{path}: {action_key!r} has no steps")
    state = {k: array_of(raw, k, path, steps, tail) for k, tail in STATE_KEYS.items()}
    quat = state["obs/tcp_pose"][:, 3:].astype(np.float64)
    norms = np.linalg.norm(quat, axis=1, keepdims=True)
    if (norms < 1e-6).any():
        raise DataFormatError(f"{path}: 'obs/tcp_pose' has a zero quaternion at step {int(np.argmin(norms))}")
    tcp_pose = np.concatenate([state["obs/tcp_pose"][:, :3], quat / norms], axis=1)
    if "obs/gripper_dist" in raw:
        gripper = array_of(raw, "obs/gripper_dist", path, steps, ()).reshape(steps, 1)
    else:
        gripper = GRIPPER_OPEN * (1.0 - state["obs/gripper_pose"].reshape(steps, 1).astype(np.float64))
    data = {
        ob.store_key(ob.TCP_POSE): tcp_pose,
        ob.store_key(ob.TCP_VEL): state["obs/tcp_vel"],
        ob.store_key(ob.WRENCH): np.concatenate([state["obs/tcp_force"], state["obs/tcp_torque"]], axis=1),
        ob.store_key(ob.Q): state["obs/q"],
        ob.store_key(ob.DQ): state["obs/dq"],
        ob.store_key(ob.GRIPPER): gripper,
    }
    data = {k: v.astype(np.float32) for k, v in data.items()}
    data["action"] = convert_actions(actions, config.action_units)
    if "obs/jacobian" in raw:
        data["obs/jacobian"] = array_of(raw, "obs/jacobian", path, steps, (6, 7)).astype(np.float32)
    for camera in config.cameras:
        key = f"obs/{camera}"
        if key not in raw:
            raise DataFormatError(f"{path}: missing key {key!r} (camera {camera}; choose cameras with --cameras)")
        bgr = array_of(raw, key, path, steps, np.asarray(raw[key]).shape[1:], "u")
        if bgr.ndim != 4 or bgr.shape[-1] != 3 or bgr.dtype != np.uint8:
            raise DataFormatError(f"{path}: {key!r} is {bgr.dtype} {bgr.shape}, expected uint8 (N, H, W, 3) BGR")
        data[ob.store_key(ob.rgb_key(camera))] = np.ascontiguousarray(bgr[..., ::-1])
        if config.depth:
            dkey = f"obs/{camera}_depth"
            depth = array_of(raw, dkey, path, steps, bgr.shape[1:3])
            data[ob.store_key(ob.depth_key(camera))] = (depth.astype(np.float64) * config.depth_scale).astype(
                np.float32
            )
    used = {action_key, *STATE_KEYS, *OPTIONAL_KEYS, "primitive"}
    skipped = sorted(str(k) for k in raw if k not in used)
    skipped += [f"obs/{c}" for c in CAMERAS if f"obs/{c}" in raw and c not in config.cameras]
    return data, skipped


def convert_actions(actions: np.ndarray, units: str = "normalized") -> np.ndarray:
    """(N, 7) FMB actions -> (N, 7) float32 ours: translation [m] + rotation vector [rad], base frame,
    + gripper (1 = close). `units`: "normalized" (divided by 0.06 m / 0.25 rad, FMB's release) or "si"."""
    a = np.asarray(actions, dtype=np.float64)
    delta = a[:, :6] * ACTION_SCALE if units == "normalized" else a[:, :6]
    rotvec = Rotation.from_euler("xyz", delta[:, 3:6]).as_rotvec()
    return np.concatenate([delta[:, :3], rotvec, a[:, 6:7]], axis=1).astype(np.float32)


def segments(primitives, object_ids=None) -> list[Segment]:
    """Maximal runs of one primitive (and one object, where `object_ids` is given) over the steps."""
    prims = [_text(p) for p in primitives]
    ids = [None] * len(prims) if object_ids is None else [int(i) for i in object_ids]
    out, start = [], 0
    for t in range(1, len(prims) + 1):
        if t == len(prims) or (prims[t], ids[t]) != (prims[start], ids[start]):
            out.append(Segment(start, t, prims[start], ids[start]))
            start = t
    return out


def object_labels(raw: dict, path: Path, object_id: int | None) -> dict:
    """Episode meta naming the object: our family, size, length, colour and peg part name (cad's names)
    for single-object files (object_info, else the file name); board and object id for multi-object ones."""
    info = raw.get("object_info")
    name = path.stem.split("_")
    labels: dict = {}
    fields = None
    if isinstance(info, dict):
        fields = (info.get("shape"), info.get("size"), info.get("length"), info.get("color"))
    elif name[:2] == ["insert", "only"] and len(name) >= 6:
        fields = (name[2], name[3], name[4], name[5])
    elif len(name) >= 4 and name[0].isdigit() and "board" not in str(path.parent.name):
        fields = tuple(name[:4])
    if fields is not None:
        shape, size, length, color = fields
        try:
            family = FMB_SHAPES[int(shape) - 1]
            size, length = SIZES[_text(size)], LENGTHS[_text(length)]
            colour = list(COLOURS)[int(color) - 1]
        except (ValueError, TypeError, KeyError, IndexError):
            raise DataFormatError(
                f"{path}: object labels {fields} are not FMB's (shape 1-9, size L/M/S, length L/S, color 1-8)"
            ) from None
        labels = {"family": family, "size": size, "length": length, "colour": colour}
        labels["peg"] = f"peg_{family}_{size}_{length}"
        labels["fmb_object_info"] = {"shape": int(shape), "size": size, "length": _text(fields[2]), "color": int(color)}
        if len(name) >= 6 and name[0].isdigit():
            labels["orientation"], labels["distractors"] = name[4], name[5] == "y"
    board = next((p for p in path.parts if p.startswith("board_") and p[6:].isdigit()), None)
    if object_id is not None or board:
        k = int(board[6:]) if board else None
        labels.update(board=k, fmb_object_id=object_id, family=f"fmb_board_{k}_object_{object_id}")
        labels.update(size="-", length="-")
        colour = BOARD_OBJECTS.get(k, {}).get(object_id)
        if colour:
            labels["colour"] = colour
    return labels


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def synthetic_trajectory(primitives: list[str], seed: int = 0, side: int = 256, object_id=None) -> dict:
    """One trajectory dict in FMB's release format (module docstring), with made-up values: for
    tests and `fmb bench import`. Images are camera-like (a smooth scene, a few flat parts and
    2-level sensor noise, which is what makes real frames compress poorly), depth in mm."""
    rng = np.random.default_rng(seed)
    n = len(primitives)
    quat = Rotation.from_euler("xyz", [np.pi, 0, np.pi / 2]).as_quat()  # FMB's reset orientation, xyzw
    raw = {
        "obs/tcp_pose": np.concatenate([rng.uniform(0.3, 0.6, (n, 3)), np.tile(quat, (n, 1))], axis=1),
        "obs/tcp_vel": rng.normal(0, 0.05, (n, 6)),
        "obs/tcp_force": rng.normal(0, 2, (n, 3)),
        "obs/tcp_torque": rng.normal(0, 0.2, (n, 3)),
        "obs/q": rng.uniform(-1, 1, (n, 7)),
        "obs/dq": rng.normal(0, 0.1, (n, 7)),
        "obs/jacobian": rng.normal(size=(n, 6, 7)),
        "obs/gripper_pose": (np.arange(n) >= n // 2).astype(np.float64),
        "actions": np.concatenate([rng.uniform(-1, 1, (n, 6)), (np.arange(n) >= n // 2)[:, None]], axis=1),
        "primitive": np.array(primitives),
    }
    yy, xx = np.mgrid[0:side, 0:side] * (256.0 / side)
    for camera in CAMERAS:
        scene = np.stack([0.4 * xx + 0.3 * yy, 0.6 * xx, 90 + 0.5 * yy], axis=-1)
        for _ in range(3):  # flat parts (the board, a peg)
            x0, y0, w = rng.integers(0, side, 3)
            scene[y0 : y0 + w // 3, x0 : x0 + w // 3] = rng.uniform(0, 255, 3)
        noise = rng.normal(0, 2.0, (n, side, side, 3))
        raw[f"obs/{camera}"] = (scene[None] + noise).clip(0, 255).astype(np.uint8)
        depth = 600 + 0.8 * xx + rng.normal(0, 1.5, (n, side, side))
        raw[f"obs/{camera}_depth"] = depth.astype(np.uint16)
    if object_id is None:
        raw["object_info"] = {"shape": 3, "color": 2, "length": "L", "size": "M"}
    else:
        raw["object_id"] = np.asarray(object_id)
    return raw
