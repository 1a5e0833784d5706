"""Training: the D step and the G step (step.py) and their losses (losses.py), the loop around them with
its checkpoints and logs (loop.py, state.py, tensorboard_log.py), what the loop watches - sample grids,
their statistics, FVD (monitor.py) -, the moving average of G (averaging.py), several devices or
machines (replicas.py) and the process launcher (launch.py)."""
from .loop import GanTraining, train

__all__ = ["GanTraining", "train"]
