"""Built-in steps, thin ``@step`` adapters over :mod:`..compute`; importing this
package registers them."""

from __future__ import annotations

from . import features, preprocess, resample, rocket, split

__all__ = ["features", "preprocess", "resample", "rocket", "split"]
