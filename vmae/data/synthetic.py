"""Procedural motion-video datasets: classes defined only by how one "actor" shape moves.

Ten classes in five time-reversed pairs: move right/left, move down/up, rotate clockwise/
counter-clockwise, grow/shrink, appear/disappear. A video's actor trajectory is drawn once for the
forward member of its pair and played backwards for the other, so a single frame of a class and
of its partner have exactly the same distribution: only the order of frames tells them apart.
Appearance (shape, colour, size, aspect, start position, orientation, 0-2 distractors) is random
within every class. The actor is large (a half-width of 28-36 % of the frame) so that the few
positions a high mask ratio leaves visible still show it: ``actor_hidden_probability`` gives the
chance that tube masking hides it in every frame.

Two styles share the classes and differ in appearance: ``clean`` (flat rectangles, ellipses,
triangles and diamonds on a plain dark background) and ``clutter`` (textured crosses and rings on a
smooth random-coloured textured background, 1-2 textured distractors, mild flicker; pixel noise
only if the dataset file asks for it).
Every video has its own ``numpy.random.Generator`` seeded from (seed, split, class, index), so any
video can be regenerated alone; drawing is vectorised over (T, H, W) with anti-aliased edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

CLASS_NAMES = [
    "move_right", "move_left", "move_down", "move_up", "rotate_cw", "rotate_ccw",
    "grow", "shrink", "appear", "disappear",
]  # fmt: skip
# class -> (motion kind, played backwards?)
CLASS_MOTION = {name: (["move_x", "move_y", "rotate", "scale", "visibility"][i // 2], i % 2 == 1)
                for i, name in enumerate(CLASS_NAMES)}
FLIP_LABEL_MAP = {"move_right": "move_left", "move_left": "move_right",
                  "rotate_cw": "rotate_ccw", "rotate_ccw": "rotate_cw"}
SPLITS = {"train": 0, "val": 1, "test": 2}
SHAPES = {"clean": ("rect", "ellipse", "triangle", "diamond"), "clutter": ("cross", "ring")}
ACTOR_HALF_WIDTH = (0.28, 0.36)  # of the frame size
DISTRACTOR_HALF_WIDTH = (0.06, 0.10)
Style = Literal["clean", "clutter"]


@dataclass(frozen=True)
class GeneratorParams:
    """``source.generator`` of a synthetic dataset YAML (schema defaults filled)."""

    style: Style
    train_per_class: int = 20
    val_per_class: int = 20
    test_per_class: int = 20
    size: int = 32  # frame height and width (px)
    frames: int = 32  # frames per video
    fps: int = 25
    seed: int = 0
    noise: float = 0.0  # std of per-pixel Gaussian noise, [0, 1] units
    codec: str = "ffv1"  # vmae.data.writer codec; ffv1 is lossless (decoded = generated)

    @classmethod
    def from_spec(cls, generator: dict[str, Any]) -> GeneratorParams:
        return cls(**generator)

    def per_class(self, split: str) -> int:
        return {"train": self.train_per_class, "val": self.val_per_class, "test": self.test_per_class}[split]


def video_rng(seed: int, split: str, class_index: int, index: int) -> np.random.Generator:
    """The generator of video ``index`` of class ``class_index`` in ``split``."""
    return np.random.default_rng([seed, SPLITS[split], class_index, index])


def make_video(params: GeneratorParams, split: str, class_index: int, index: int) -> np.ndarray:
    """Video ``index`` of class ``class_index`` in ``split``: uint8 (T, H, W, 3) RGB."""
    return render(video_rng(params.seed, split, class_index, index), class_index, params)[0]


def actor_hidden_probability(params: GeneratorParams, split: str, class_index: int, index: int,
                             patch_size: int, mask_ratio: float, min_pixels: float = 4.0) -> float:
    """P(tube masking at ``mask_ratio`` hides the actor of one video in every frame).

    The actor shows at a spatial position (a ``patch_size`` square) if it covers at least
    ``min_pixels`` of it in some frame. Tube masking keeps ``n - int(mask_ratio * n)`` of the ``n``
    positions, drawn uniformly without replacement, the same in every frame (vmae.models.masking),
    so the chance that none of the ``k`` positions the actor touches is kept is hypergeometric.
    """
    coverage = render(video_rng(params.seed, split, class_index, index), class_index, params)[1]
    per_patch = coverage.reshape(len(coverage), params.size // patch_size, patch_size,
                                 params.size // patch_size, patch_size).sum(axis=(2, 4))  # (T, h, w)
    touched = int((per_patch >= min_pixels).any(axis=0).sum())
    positions = per_patch.shape[1] * per_patch.shape[2]
    kept = positions - int(mask_ratio * positions)
    return float(math.comb(positions - touched, kept) / math.comb(positions, kept))


def render(rng: np.random.Generator, class_index: int, params: GeneratorParams) -> tuple[np.ndarray, np.ndarray]:
    """Draw one video of class ``class_index``: uint8 (T, size, size, 3) and the actor's coverage
    (T, size, size) in [0, 1] (the fraction of each pixel it paints)."""
    style, size, frames, noise = params.style, params.size, params.frames, params.noise
    kind, backwards = CLASS_MOTION[CLASS_NAMES[class_index]]
    clutter = style == "clutter"
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # (2, H, W): pixel centres (y, x)
    video = np.broadcast_to(_background(rng, grid, clutter).astype(np.float32), (frames, size, size, 3)).copy()
    for _ in range(rng.integers(1 if clutter else 0, 3)):
        _draw(video, grid, _distractor_track(rng, size, frames), _appearance(rng, style, size, DISTRACTOR_HALF_WIDTH))
    track = _actor_track(rng, kind, size, frames)
    if backwards:
        track = {key: value[::-1] for key, value in track.items()}
    actor = _draw(video, grid, track, _appearance(rng, style, size, ACTOR_HALF_WIDTH))
    if clutter:
        video *= rng.uniform(0.95, 1.05, size=(frames, 1, 1, 1)).astype(np.float32)  # flicker
    if noise > 0:
        video += rng.normal(0.0, noise, size=video.shape).astype(np.float32)
    return np.round(np.clip(video, 0.0, 1.0) * 255).astype(np.uint8), actor


# --------------------------------------------------------------------------- trajectories
# A track is a dict of per-frame arrays (T,): cx, cy (px), theta (rad), scale, alpha (0..1).


def _actor_track(rng: np.random.Generator, kind: str, size: int, frames: int) -> dict[str, np.ndarray]:
    """The forward trajectory of a ``kind`` motion; it spans the whole video."""
    t = np.linspace(0.0, 1.0, frames)
    lo, hi = 0.2 * size, 0.8 * size
    cx = np.full(frames, rng.uniform(lo, hi))
    cy = np.full(frames, rng.uniform(lo, hi))
    theta = np.full(frames, rng.uniform(0, 2 * np.pi))
    scale = np.ones(frames)
    alpha = np.ones(frames)
    if kind in ("move_x", "move_y"):
        travel = rng.uniform(0.4, 0.55) * size
        path = rng.uniform(lo - 0.05 * size, hi + 0.05 * size - travel) + travel * t
        if kind == "move_x":
            cx = path
        else:
            cy = path
    elif kind == "rotate":
        theta = theta + rng.uniform(1.6, 3.0) * t  # increasing angle = clockwise on screen (y down)
    elif kind == "scale":
        ratio = rng.uniform(1.8, 2.4)
        scale = ratio ** (t - 0.5)  # geometric, centred on the drawn size
    elif kind == "visibility":
        alpha = (t >= rng.uniform(0.3, 0.7)).astype(np.float64)
    return {"cx": cx, "cy": cy, "theta": theta, "scale": scale, "alpha": alpha}


def _distractor_track(rng: np.random.Generator, size: int, frames: int) -> dict[str, np.ndarray]:
    """A distractor: static, or drifting slowly in a random direction."""
    t = np.linspace(0.0, 1.0, frames)
    start = rng.uniform(0.1 * size, 0.9 * size, size=2)
    drift = 0.0 if rng.random() < 0.5 else rng.uniform(0.05, 0.25) * size
    angle = rng.uniform(0, 2 * np.pi)
    return {
        "cx": start[0] + drift * np.cos(angle) * t,
        "cy": start[1] + drift * np.sin(angle) * t,
        "theta": np.full(frames, rng.uniform(0, 2 * np.pi)),
        "scale": np.ones(frames),
        "alpha": np.ones(frames),
    }


# --------------------------------------------------------------------------- appearance


@dataclass(frozen=True)
class Appearance:
    shape: str
    half_width: float  # px, along the shape's own u axis
    half_height: float  # px, along v (shorter: every shape shows its orientation)
    colour: np.ndarray  # (3,) RGB in [0, 1]
    texture: tuple[float, float, float, float, float]  # (contrast, freq_u, freq_v, phase_u, phase_v)


def _appearance(rng: np.random.Generator, style: Style, size: int, half_width: tuple[float, float]) -> Appearance:
    half = rng.uniform(*half_width) * size
    aspect = rng.uniform(1.3, 1.7)
    colour = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.55, 1.0), rng.uniform(0.7, 1.0))
    frequencies, phases = rng.uniform(0.8, 1.6, size=2).tolist(), rng.uniform(0, 2 * np.pi, size=2).tolist()
    texture = (rng.uniform(0.25, 0.4), *frequencies, *phases)
    return Appearance(
        shape=SHAPES[style][rng.integers(len(SHAPES[style]))],
        half_width=half,
        half_height=half / aspect,
        colour=colour,
        texture=texture if style == "clutter" else (0.0, 0.0, 0.0, 0.0, 0.0),
    )


def _background(rng: np.random.Generator, grid: np.ndarray, clutter: bool) -> np.ndarray:
    """(H, W, 3) in [0, 1]: near-black (clean) or a smooth blend of two muted colours (clutter)."""
    size = grid.shape[1]
    if not clutter:
        return np.full((size, size, 3), rng.uniform(0.0, 0.08))
    field = np.zeros((size, size))
    for _ in range(3):  # low-frequency texture: a few random plane waves of 0.5-2 cycles an image
        freq = rng.uniform(0.5, 2.0) * 2 * np.pi / size
        angle = rng.uniform(0, 2 * np.pi)
        field += np.cos(freq * (np.cos(angle) * grid[1] + np.sin(angle) * grid[0]) + rng.uniform(0, 2 * np.pi))
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    low, high = (_hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5)) for _ in range(2))
    return low * (1 - field[..., None]) + high * field[..., None]


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour -> RGB (3,), all in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


# --------------------------------------------------------------------------- drawing


def _draw(video: np.ndarray, grid: np.ndarray, track: dict[str, np.ndarray], look: Appearance) -> np.ndarray:
    """Composite one shape onto ``video: float32 (T, H, W, 3)`` in place, anti-aliased; returns its
    coverage (T, H, W) in [0, 1]."""
    track = {key: value.astype(np.float32)[:, None, None] for key, value in track.items()}  # (T, 1, 1)
    dy = grid[0][None] - track["cy"]  # (T, H, W)
    dx = grid[1][None] - track["cx"]
    cos, sin = np.cos(track["theta"]), np.sin(track["theta"])
    scale = track["scale"]
    u = (cos * dx + sin * dy) / scale  # shape coordinates (px at scale 1)
    v = (-sin * dx + cos * dy) / scale
    coverage = np.clip(0.5 - _signed_distance(look, u, v) * scale, 0.0, 1.0)
    coverage *= track["alpha"]
    paint = look.colour.astype(np.float32)
    contrast, fu, fv, pu, pv = look.texture
    if contrast:  # texture in shape coordinates: it moves, turns and scales with the shape
        paint = paint * (1.0 + contrast * np.sin(fu * u + pu) * np.sin(fv * v + pv))[..., None]
    video += coverage[..., None] * (paint - video)
    return coverage


def _signed_distance(look: Appearance, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (px, negative inside) from shape coordinates to the outline."""
    a, b = look.half_width, look.half_height
    if look.shape == "rect":
        return np.maximum(np.abs(u) - a, np.abs(v) - b)
    if look.shape == "ellipse":
        return (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * b
    if look.shape == "diamond":  # |u|/a + |v|/b <= 1
        return (np.abs(u) * b + np.abs(v) * a - a * b) / np.hypot(a, b)
    if look.shape == "cross":  # a long bar along u over a short one along v, both b / 2 thick
        bar = b / 2
        return np.minimum(np.maximum(np.abs(u) - a, np.abs(v) - bar), np.maximum(np.abs(u) - bar, np.abs(v) - b))
    if look.shape == "ring":  # an elliptical band, b / 2 thick, around the ellipse's outline
        return np.abs((np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * b) - b / 4
    # triangle: apex at (a, 0), base from (-a, -b) to (-a, b)
    slant = (np.abs(v) * 2 * a + (u - a) * b) / np.hypot(2 * a, b)
    return np.maximum(-a - u, slant)
