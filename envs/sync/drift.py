"""Page-Hinkley change detection on a residual stream (Page 1954; Hinkley 1971).

For samples x_t with running mean x̄_t, the test accumulates
``m_t = Σ (x_i − x̄_i − δ)`` and flags an upward change when ``m_t − min_{i≤t} m_i > λ``; the
mirrored sum ``Σ (x̄_i − x_i − δ)`` flags a downward change. δ (``delta``) is the size of a
mean change that is tolerated, in the residual's unit; λ (``threshold``) trades detection
delay against false alarms. After a flag the statistics restart, so one detector reports each
change once. NaN samples (sensor dropouts) are skipped.
"""

from __future__ import annotations

import math


class PageHinkley:
    """Two-sided (or one-sided) Page-Hinkley detector."""

    def __init__(
        self,
        *,
        delta: float = 0.005,
        threshold: float = 50.0,
        min_samples: int = 5,
        direction: str = "both",
    ) -> None:
        if not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, not {delta!r}")
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a positive number, not {threshold!r}")
        if not (isinstance(min_samples, int) and min_samples >= 1):
            raise ValueError(f"min_samples must be a whole number >= 1, not {min_samples!r}")
        if direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.min_samples = min_samples
        self.direction = direction
        self.detections = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the detection count is kept)."""
        self.count = 0
        self.mean = 0.0
        self._up = self._up_min = 0.0
        self._down = self._down_min = 0.0

    @property
    def statistic(self) -> float:
        """The larger of the two test statistics now (residual unit)."""
        return max(self._up - self._up_min, self._down - self._down_min)

    def update(self, value: float) -> bool:
        """Add one sample; True when a change is flagged at this sample."""
        if value is None or not math.isfinite(value):
            return False
        self.count += 1
        self.mean += (value - self.mean) / self.count
        self._up += value - self.mean - self.delta
        self._up_min = min(self._up_min, self._up)
        self._down += self.mean - value - self.delta
        self._down_min = min(self._down_min, self._down)
        if self.count < self.min_samples:
            return False
        up = self._up - self._up_min > self.threshold
        down = self._down - self._down_min > self.threshold
        flagged = (up and self.direction != "down") or (down and self.direction != "up")
        if flagged:
            self.detections += 1
            self.reset()
        return flagged
