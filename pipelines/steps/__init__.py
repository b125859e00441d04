"""Built-in steps, thin ``@step`` adapters over :mod:`..compute`; importing this
package registers them."""

from __future__ import annotations

from . import features, preprocess, rocket, split

__all__ = ["features", "preprocess", "rocket", "split"]
