"""Video files -> stabilised clips -> JPEG strips + list file (the original's extra/stabilize_videos_many.py,
docs/original.md §7, faithful on request and faster and safer by default).

    from stabilize import StabilizeConfig, stabilize_many
    report = stabilize_many(["a.mp4", "b.mov"], "clips/", StabilizeConfig())
"""
from .config import StabilizeConfig
from .runner import stabilize_many, stabilize_video

__all__ = ["StabilizeConfig", "stabilize_many", "stabilize_video"]
