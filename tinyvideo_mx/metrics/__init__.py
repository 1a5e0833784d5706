"""Evaluation: Frechet Video Distance (I3D features) and Inception Score (C3D class probabilities)."""
from .frechet import feature_statistics, frechet_distance
from .inception_score import inception_score

__all__ = ["feature_statistics", "frechet_distance", "inception_score"]
