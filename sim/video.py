"""Write RGB frames to an mp4 (H.264 through PyAV, MPEG-4 Part 2 where libx264 is missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError


def write_mp4(frames: list[np.ndarray], path: Path, fps: int = 10) -> Path:
    """Encode `frames` ((H, W, 3) uint8 each, all the same size) to `path`."""
    import av

    if not frames:
        raise ParameterError("no frames to write")
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ParameterError(f"--video {path}: expected a .mp4 file")
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2  # yuv420p needs even sizes
    tmp = path.with_name(f".{path.name}.tmp")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        try:
            stream = container.add_stream("libx264", rate=fps)
        except Exception:  # noqa: BLE001 - codec missing from this PyAV build
            stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        for frame in frames:
            padded = np.zeros((h2, w2, 3), np.uint8)
            padded[:h, :w] = frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def tile(images: list[np.ndarray]) -> np.ndarray:
    """Side-by-side tiling of equally tall images."""
    return np.concatenate(images, axis=1)
