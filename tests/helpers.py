"""Small things tests make for themselves (shared with the benchmark, from the sandbox)."""

from __future__ import annotations

from videogen.sandbox.assets import file_server, png_bytes

__all__ = ["file_server", "png_bytes"]
