"""Deterministic, lazy generators of panels for each scenario."""

from __future__ import annotations

from .synthetic import GENERATORS, generator_names, open_synthetic

__all__ = ["GENERATORS", "generator_names", "open_synthetic"]
