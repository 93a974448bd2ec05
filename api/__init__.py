"""The outside faces: CLI (and later HTTP), settings, and the composition root."""
