"""Timing that cancels the speed phases of shared machines.

Laptops and CI virtual machines change CPU speed by tens of percent for seconds at a time, which
would drown a small benchmark's signal. So each timed section is bracketed by a short, fixed
calibration loop, and its duration is reported in reference seconds: the wall time scaled by how
fast the calibration loop ran at that moment. A change that makes the measured code faster shows up
in full; a slow phase of the machine largely cancels out.
"""

from __future__ import annotations

import time

# How long the calibration loop takes on the reference machine; the unit of every reported time.
REFERENCE_LOOP_S = 0.004


def _calibration_loop() -> float:
    start = time.perf_counter()
    acc = 0
    for i in range(40_000):
        acc = (acc * 31 + i) % 1_000_003
    return time.perf_counter() - start


def speed_factor() -> float:
    """Reference seconds per wall-clock second right now (the faster of two loops, to skip hiccups)."""
    return REFERENCE_LOOP_S / min(_calibration_loop(), _calibration_loop())


class SteadyTimer:
    """Context manager: ``elapsed`` is the section's wall time in reference seconds."""

    def __enter__(self) -> SteadyTimer:
        self.factor_before = speed_factor()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.start
        self.factor = (self.factor_before + speed_factor()) / 2
        self.elapsed = wall * self.factor
