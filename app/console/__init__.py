"""The operations console: static HTML/CSS/JS served at `/console` (no build step, no CDN)."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
