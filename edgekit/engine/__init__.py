"""The one door to model files: every interpreter call in edgekit happens in this package."""
