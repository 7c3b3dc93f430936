"""kepu: the national science micro-video call, from submitted folder to published video."""

from __future__ import annotations

__version__ = "0.1.0"
