#!/usr/bin/env bash
# Our LeRobot v3.0 reader and writer against the real LeRobot library, both ways:
#   1. two simulated demonstrations exported with `fmb data export --version v3.0` are read by
#      lerobot's LeRobotDataset; every frame's low-dimensional values must equal what our own
#      reader gives, its video frames must match ours;
#   2. a dataset written by lerobot (LeRobotDataset.create / add_frame / save_episode / finalize)
#      is imported with `fmb data import-lerobot`; its values must equal what was written.
# LeRobot pins torch, av, diffusers and packaging below this stack's versions, so it lives in its
# own environment (a CUDA torch from PyPI: several GB), not in CI:
#   python3.11 -m venv /tmp/lrvenv && /tmp/lrvenv/bin/pip install lerobot==0.4.4
# Usage: scripts/check_lerobot_v3.sh LEROBOT_PYTHON [WORK]   (a minute or two)
set -euo pipefail
cd "$(dirname "$0")/.."
LR="${1:?usage: scripts/check_lerobot_v3.sh LEROBOT_PYTHON [WORK]}"
W="${2:-$(mktemp -d)}"
mkdir -p "$W"
"$LR" -c "import lerobot, torch; print('lerobot', lerobot.__version__, 'torch', torch.__version__)"

# 1. ours -> lerobot
[ -e "$W/store/store.json" ] || .venv/bin/fmb sim collect --task insert --episodes 2 --out "$W/store" --cameras wrist \
  --image-size 64 --quiet > /dev/null
rm -rf "$W/ours" && .venv/bin/fmb data export "$W/store" --out "$W/ours" --version v3.0 --quiet > /dev/null
"$LR" - "$W" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

w = Path(sys.argv[1])
ds = LeRobotDataset("local/ours", root=w / "ours", video_backend="pyav")  # torchcodec needs a system FFmpeg
frames = [ds[i] for i in range(len(ds))]
keys = [k for k, v in frames[0].items() if hasattr(v, "numpy")]
out = {k.replace("/", "|"): np.stack([f[k].numpy() for f in frames]) for k in keys}
np.savez(w / "ours_by_lerobot.npz", **out)
print(f"lerobot read ours: {ds.num_episodes} episodes, {len(ds)} frames, keys {sorted(keys)}")
EOF
.venv/bin/python - "$W" <<'EOF'
import sys
from pathlib import Path

import numpy as np

from sim.lerobot import import_lerobot

w = Path(sys.argv[1])
theirs = dict(np.load(w / "ours_by_lerobot.npz"))
store = import_lerobot(w / "ours", w / "ours_reimported", progress=False)
episodes = [store.load(i).data for i in store.episode_indices()]
ours = {k: np.concatenate([e[k] for e in episodes]) for k in episodes[0]}
assert len(theirs["index"]) == len(ours["action"]), (len(theirs["index"]), len(ours["action"]))
assert np.array_equal(theirs["action"], ours["action"].astype(theirs["action"].dtype)), "action differs"
checked = ["action"]
for key, values in theirs.items():
    name = key.replace("|", "/")
    if name.startswith("observation.") and not name.startswith("observation.images"):
        store_key = "obs/" + name.removeprefix("observation.").replace(".", "/")
        if store_key in ours:
            assert np.array_equal(values, ours[store_key].astype(values.dtype).reshape(values.shape)), name
            checked.append(name)
images = [k for k in theirs if k.startswith("observation.images")]
for key in images:  # lerobot: (T, C, H, W) float in [0, 1]; ours: (T, H, W, C) uint8
    store_key = "obs/rgb/" + key.removeprefix("observation.images.")
    mine = ours[store_key].astype(np.float32) / 255.0
    diff = np.abs(np.moveaxis(theirs[key], 1, -1) - mine)
    print(f"  {key}: mean |difference| {diff.mean() * 255:.3f} / 255, max {diff.max() * 255:.1f} / 255")
    assert diff.mean() * 255 < 1.0, key
print(f"1. ours -> lerobot: {len(ours['action'])} frames equal on {', '.join(checked)}; images {images}")
EOF

# 2. lerobot -> ours
rm -rf "$W/theirs" "$W/theirs_store"
"$LR" - "$W" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

w = Path(sys.argv[1])
features = {
    "observation.state": {"dtype": "float32", "shape": (7,), "names": None},
    "action": {"dtype": "float32", "shape": (7,), "names": None},
    "observation.images.wrist": {"dtype": "video", "shape": (64, 64, 3), "names": ["height", "width", "channels"]},
}
ds = LeRobotDataset.create("local/theirs", fps=10, features=features, root=w / "theirs", use_videos=True)
rng = np.random.default_rng(0)
written = {"observation.state": [], "action": [], "image": []}
for episode, steps in enumerate((7, 5)):
    for t in range(steps):
        frame = {
            "observation.state": rng.normal(size=7).astype(np.float32),
            "action": rng.normal(size=7).astype(np.float32),
            "observation.images.wrist": np.full((64, 64, 3), 20 * t + 40 * episode, np.uint8),
            "task": "insert the peg",
        }
        ds.add_frame(frame)
        written["observation.state"].append(frame["observation.state"])
        written["action"].append(frame["action"])
        written["image"].append(frame["observation.images.wrist"])
    ds.save_episode()
ds.finalize()
np.savez(w / "theirs_written.npz", **{k.replace(".", "_"): np.stack(v) for k, v in written.items()})
print(f"lerobot wrote {ds.num_episodes} episodes, {ds.num_frames} frames (codebase {ds.meta.info['codebase_version']})")
EOF
.venv/bin/python - "$W" <<'EOF'
import sys
from pathlib import Path

import numpy as np

from sim.lerobot import import_lerobot

w = Path(sys.argv[1])
written = dict(np.load(w / "theirs_written.npz"))
store = import_lerobot(w / "theirs", w / "theirs_store", progress=False)
episodes = [store.load(i) for i in store.episode_indices()]
data = {k: np.concatenate([e.data[k] for e in episodes]) for k in episodes[0].data}
assert [len(e.data["action"]) for e in episodes] == [7, 5]
assert np.array_equal(data["action"], written["action"]), "action differs"
state = [k for k in data if k in ("obs/state",)]
assert state and np.array_equal(data[state[0]], written["observation_state"]), f"state differs ({sorted(data)})"
image = next(k for k in data if k.startswith("obs/rgb/"))
diff = np.abs(data[image].astype(int) - written["image"].astype(int))
print(f"  {image}: mean |difference| {diff.mean():.3f} / 255, max {diff.max()} / 255")
assert diff.mean() < 1.0
print(f"2. lerobot -> ours: {len(episodes)} episodes, {len(data['action'])} frames; action and state equal; "
      f"task text {episodes[0].meta.get('task_text')!r}")
EOF
echo "LeRobot v3.0 check passed ($W)"
