"""neurod package."""
