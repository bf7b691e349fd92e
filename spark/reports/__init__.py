"""Batch reports over silver: each a small module with pure DataFrame transforms."""
