"""Training: the D step and the G step (step.py), the loop around them with its checkpoints and logs
(loop.py), and what the loop watches - sample grids, their statistics, FVD (monitor.py)."""
from .loop import GanTraining, train

__all__ = ["GanTraining", "train"]
