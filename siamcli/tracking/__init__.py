"""The tracker loop: crop, anchors and points, decoding, loss states, re-detection, several targets."""
