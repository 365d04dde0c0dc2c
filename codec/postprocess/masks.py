"""Hole masks for training and benchmarking: DeepFill v2's free-form strokes and a square.

The seed (section IV-A) trains and tests on "a union of a random free-form mask and a
96 x 96 sized square mask" made by DeepFill v2's generator, on 256 x 256 images.  Here every
length of that generator (stroke widths 12-40, the mean vertex distance sqrt(H^2 + W^2) / 8,
the square's side 96) is scaled by ``side / 256`` where ``side`` is the smaller image side,
so that a 128 x 128 training crop gets strokes 6-20 pixels wide and a 48 x 48 square.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

#: DeepFill v2's brush-stroke generator (inpaint_ops.py, ``brush_stroke_mask``), at 256 px.
MIN_VERTICES, MAX_VERTICES = 4, 12
MEAN_ANGLE, ANGLE_RANGE = 2 * math.pi / 5, 2 * math.pi / 15
MIN_WIDTH, MAX_WIDTH = 12, 40
SQUARE = 96
REFERENCE_SIDE = 256


def free_form_mask(height: int, width: int, rng: np.random.Generator,
                   strokes: tuple[int, int] = (1, 4)) -> np.ndarray:
    """DeepFill v2's random free-form brush strokes (True = hole), scaled to the image.

    Parameters
    ----------
    height, width : int
        Image size.
    rng : numpy.random.Generator
    strokes : (int, int)
        Number of strokes drawn from ``[low, high)`` (DeepFill: 1 to 3).
    """
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    scale = min(height, width) / REFERENCE_SIDE
    average_radius = math.sqrt(height ** 2 + width ** 2) / 8
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(*strokes)):
        vertices = rng.integers(MIN_VERTICES, MAX_VERTICES)
        angle_min = MEAN_ANGLE - rng.uniform(0, ANGLE_RANGE)
        angle_max = MEAN_ANGLE + rng.uniform(0, ANGLE_RANGE)
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        for i in range(vertices):
            angle = rng.uniform(angle_min, angle_max)
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            radius = np.clip(rng.normal(average_radius, average_radius // 2), 0,
                             2 * average_radius)
            x = np.clip(points[-1][0] + radius * math.cos(angle), 0, width)
            y = np.clip(points[-1][1] + radius * math.sin(angle), 0, height)
            points.append((int(x), int(y)))
        stroke = max(1, int(rng.uniform(MIN_WIDTH, MAX_WIDTH) * scale))
        draw.line(points, fill=255, width=stroke)
        for x, y in points:
            draw.ellipse((x - stroke // 2, y - stroke // 2, x + stroke // 2, y + stroke // 2),
                         fill=255)
    mask = np.asarray(canvas) > 0
    # DeepFill meant to flip at random but discarded the flipped image; we do flip
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1]
    return np.ascontiguousarray(mask)


def square_mask(height: int, width: int, rng: np.random.Generator,
                side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """A square hole at a random place (True = hole) and its centre (row, column).

    The side defaults to 96 scaled by ``min(height, width) / 256`` (48 for a 128 crop).
    """
    if side is None:
        side = max(1, round(SQUARE * min(height, width) / REFERENCE_SIDE))
    side = min(side, height, width)
    y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    mask = np.zeros((height, width), bool)
    mask[y:y + side, x:x + side] = True
    return mask, (y + side // 2, x + side // 2)


def hole_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The seed's training mask: free-form strokes united with a square (True = hole)."""
    return free_form_mask(height, width, rng) | square_mask(height, width, rng)[0]


def hole_mask_in_range(height: int, width: int, low: float, high: float,
                       rng: np.random.Generator, tries: int = 2000) -> np.ndarray:
    """A hole mask whose hole ratio lies in ``(low, high]`` (for ratio bins, Table IV).

    Draws the seed's masks (strokes united with a square, or strokes alone for the
    smallest ratios, where the square alone would already exceed the bin) until one falls
    in the range.
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got {low}, {high}")
    for k in range(tries):
        strokes = (1, 4) if k % 2 else (1, 7)
        mask = free_form_mask(height, width, rng, strokes)
        if k % 3 != 2:
            mask |= square_mask(height, width, rng)[0]
        if low < mask.mean() <= high:
            return mask
    raise RuntimeError(f"no hole mask with a ratio in ({low}, {high}] after {tries} draws")
