"""Frame sources, target selection, writers and drawing (OpenCV and numpy only)."""
