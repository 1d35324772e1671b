"""Procedural motion-video datasets: classes defined only by how one "actor" moves, in a scene the
actor lights (or shades), so that masked content is predictable from visible content.

Ten classes in five time-reversed pairs: move right/left, move down/up, rotate clockwise/
counter-clockwise, grow/shrink, appear/disappear. A video's actor trajectory is drawn once for the
forward member of its pair and played backwards for the other, so a single frame of a class and
of its partner have exactly the same distribution: only the order of frames tells them apart.
Appearance (shape, colours, size, aspect, start position, orientation) is random within every class.

The scene is built for VideoMAE's pretext (predicting masked tubelets, each normalised to zero mean
and unit variance): the actor carries a cone of light that reaches across the whole frame, elliptical
along the actor's long axis, scaled and faded with it. So nearly every tubelet holds a gradient (flat
tubelets are a small minority: the inside of the actor), the gradient's direction and curvature say
where the actor is at that moment, which way it points and how large it is, and the light moves with
the actor from one time slot to the next. Predicting a masked tubelet takes the actor's pose at that
time from the visible ones: the motion the classes are about. Every channel of the light holds at
least half of its brightness, so a lit tubelet varies by several grey levels in every channel, well
above 8-bit rounding (tests/test_synthetic.py measures it), and there is no per-frame noise (pixel
noise only if the dataset file asks for it): nothing in a target is unpredictable by design.

Two styles share the classes and the mechanism and differ in appearance:
``clean`` (a dark scene lit by the actor; flat bright rectangles, ellipses, triangles and diamonds)
and ``clutter`` (a bright scene the actor's shadow darkens; dark crosses and rings; one or two static
distractor shapes of their own colours, casting nothing). ``actor_hidden_probability`` gives the
chance that tube masking hides the actor itself in every frame.

Every video has its own ``numpy.random.Generator`` seeded from (seed, split, class, index), so any
video can be regenerated alone; drawing is vectorised over (T, H, W) with anti-aliased edges. The
``unlabelled`` split is a pool for pretraining sets larger than the training set (its labels are
written, and never read by pretraining).
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
SPLITS = {"train": 0, "val": 1, "test": 2, "unlabelled": 3}
SHAPES = {"clean": ("rect", "ellipse", "triangle", "diamond"), "clutter": ("cross", "ring")}
ACTOR_HALF_WIDTH = (0.28, 0.36)  # of the frame size
DISTRACTOR_HALF_WIDTH = (0.06, 0.10)
LIGHT_REACH = 1.6  # the cone of light falls to nothing this many frame sizes from the actor's centre
LIGHT_ASPECT = 1.6  # the cone is this much longer along the actor's long axis than across it
Style = Literal["clean", "clutter"]


@dataclass(frozen=True)
class GeneratorParams:
    """``source.generator`` of a synthetic dataset YAML (schema defaults filled)."""

    style: Style
    train_per_class: int = 20
    val_per_class: int = 20
    test_per_class: int = 20
    unlabelled_per_class: int = 0  # the pretraining pool beyond the training set
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
        return {"train": self.train_per_class, "val": self.val_per_class, "test": self.test_per_class,
                "unlabelled": self.unlabelled_per_class}[split]


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
    (Its light shows everywhere: a hidden actor can still be located from the light around it.)
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
    style, size, frames = params.style, params.size, params.frames
    kind, backwards = CLASS_MOTION[CLASS_NAMES[class_index]]
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # (2, H, W): pixel centres (y, x)
    track = _actor_track(rng, kind, size, frames)
    if backwards:
        track = {key: value[::-1] for key, value in track.items()}
    u, v, scale, alpha = _shape_coordinates(grid, track)
    light = np.clip(1.0 - np.hypot(u, LIGHT_ASPECT * v) / (LIGHT_REACH * size), 0.0, 1.0) * alpha  # (T, H, W)
    if style == "clean":  # a dark scene the actor lights
        base = _colour(rng, value=(0.05, 0.15))
        glow = _colour(rng, saturation=(0.1, 0.4), value=(0.8, 1.0)) * 0.7
        video = base + light[..., None] * glow
    else:  # a lit scene the actor's shadow darkens, and static distractors
        lit = _colour(rng, saturation=(0.1, 0.4), value=(0.8, 0.95))
        video = lit - light[..., None] * (0.75 * lit)
        for _ in range(rng.integers(1, 3)):
            _draw(video, grid, _distractor_track(rng, size, frames), _look(rng, style, size, DISTRACTOR_HALF_WIDTH,
                                                                           value=(0.3, 0.6)))
    look = _look(rng, style, size, ACTOR_HALF_WIDTH, value=(0.7, 1.0) if style == "clean" else (0.2, 0.5))
    actor = _paint(video, look, u, v, scale, alpha)
    if params.noise > 0:
        video += rng.normal(0.0, params.noise, size=video.shape).astype(np.float32)
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
    """A static distractor at a random place and orientation."""
    start = rng.uniform(0.1 * size, 0.9 * size, size=2)
    return {"cx": np.full(frames, start[0]), "cy": np.full(frames, start[1]),
            "theta": np.full(frames, rng.uniform(0, 2 * np.pi)), "scale": np.ones(frames), "alpha": np.ones(frames)}


def _shape_coordinates(grid: np.ndarray, track: dict[str, np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel in the shape's own coordinates (u along its long axis, v across; px at scale 1),
    each (T, H, W), and the track's scale and alpha as (T, 1, 1)."""
    track = {key: value.astype(np.float32)[:, None, None] for key, value in track.items()}  # (T, 1, 1)
    dy = grid[0][None] - track["cy"]  # (T, H, W)
    dx = grid[1][None] - track["cx"]
    cos, sin = np.cos(track["theta"]), np.sin(track["theta"])
    scale = track["scale"]
    return (cos * dx + sin * dy) / scale, (-sin * dx + cos * dy) / scale, scale, track["alpha"]


# --------------------------------------------------------------------------- appearance


@dataclass(frozen=True)
class Look:
    shape: str
    half_width: float  # px, along the shape's own u axis
    half_height: float  # px, along v (shorter: every shape shows its orientation)
    colour: np.ndarray  # (3,) RGB in [0, 1]


def _look(rng: np.random.Generator, style: Style, size: int, half_width: tuple[float, float],
          value: tuple[float, float]) -> Look:
    half = rng.uniform(*half_width) * size
    return Look(shape=SHAPES[style][rng.integers(len(SHAPES[style]))], half_width=half,
                half_height=half / rng.uniform(1.3, 1.7), colour=_colour(rng, saturation=(0.6, 1.0), value=value))


def _colour(rng: np.random.Generator, saturation: tuple[float, float] = (0.4, 0.9),
            value: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A random colour (3,) float32 RGB in [0, 1] of the given saturation and value ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


# --------------------------------------------------------------------------- drawing


def _paint(video: np.ndarray, look: Look, u: np.ndarray, v: np.ndarray, scale: np.ndarray, alpha: np.ndarray
           ) -> np.ndarray:
    """Composite a flat shape onto ``video: float32 (T, H, W, 3)`` in place, anti-aliased; returns its
    coverage (T, H, W) in [0, 1]."""
    coverage = np.clip(0.5 - _signed_distance(look, u, v) * scale, 0.0, 1.0) * alpha
    video += coverage[..., None] * (look.colour - video)
    return coverage


def _draw(video: np.ndarray, grid: np.ndarray, track: dict[str, np.ndarray], look: Look) -> np.ndarray:
    """``_paint`` a shape that follows ``track``."""
    return _paint(video, look, *_shape_coordinates(grid, track))


def _signed_distance(look: Look, u: np.ndarray, v: np.ndarray) -> np.ndarray:
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
