"""Per-camera image preprocessing: an optional crop, then a resize (uint8 in, uint8 out)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropResize:
    """Crop ``(x, y, width, height)`` in source pixels, then resize to ``size`` (height, width)."""

    size: tuple[int, int]
    crop: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) <= 0:
            raise ValueError(f"image size must be (height, width) > 0, got {self.size}")
        if self.crop is not None and (len(self.crop) != 4 or min(self.crop) < 0 or min(self.crop[2:]) <= 0):
            raise ValueError(f"crop must be (x, y, width, height) with positive size, got {self.crop}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.crop is not None:
            x, y, w, h = self.crop
            if y + h > image.shape[0] or x + w > image.shape[1]:
                raise ValueError(f"crop {self.crop} does not fit a {image.shape[1]}×{image.shape[0]} image")
            image = image[y : y + h, x : x + w]
        if image.shape[:2] != tuple(self.size):
            shrinking = image.shape[0] > self.size[0]
            image = cv2.resize(image, (self.size[1], self.size[0]),
                               interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        return np.ascontiguousarray(image)
