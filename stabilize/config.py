"""Every constant of the original stabiliser is an option; ``faithful()`` gives the original's setup."""
import dataclasses

from tinyvideo_mx.errors import SettingError

from .homography import GUIDES_FOLLOWED_MIN
from .video import check_decoder


@dataclasses.dataclass
class StabilizeConfig:
    # the original's constants (stabilize_videos_many.py:14-19, 108-156)
    video_size: int = 128            # short side after resizing; frames are centre-cropped to this square
    max_frames: int = 34             # a clip ends once it has more than 33 frames (the `len > 33` test)
    min_frames: int = 16             # shorter clips are dropped
    skip_frames: int = 2             # FRAMES_DELAY: frames skipped at the start of every video
    max_clips: int = 100             # clips per video
    min_matches: int = 10            # MIN_MATCH_COUNT
    ratio: float = 0.7               # Lowe's ratio test
    ransac_threshold: float = 5.0    # px of the video's frames
    erode: int = 5                   # coverage-mask erosion kernel
    jpeg_quality: int = 95
    # beyond the original
    motion: str = "flow"             # flow (corners followed by optical flow; matching where it fails) | features (original)
    flow_size: int = 400             # short side of the grey copy corners are found and followed on (0: full resolution)
    flow_corners: int = 400          # corners per frame at most
    flow_tiles: int = 4              # corners are capped per cell of a tiles x tiles grid (1: no cap; homography.spread_corners)
    corner_every: int = 2            # corners searched on every k-th frame (1: all); in between the flow starts where the
                                     # previous pair's flow ended (homography.FlowTracker.start_points)
    carry_min: float = 0.5           # ... if at least this share of the points it started from got there; else it searches
    flow_window: int = 15            # Lucas-Kanade window on that copy's own level, pixels
    flow_coarse_window: int = 9      # ... and on the pyramid's coarser levels (0: flow_window; homography.track)
    flow_agreement: float = 0.5      # fraction of followed corners the homography must fit, else the flow is tried again:
    flow_guides: int = 64            # ... this many of its points followed through the coarse levels, the motion they agree
                                     # on placing all on the finest (0: no second try; homography.guided_track); else matching
    features: str = "sift"           # sift | orb
    feature_size: int = 192          # short side of the grey copy features are found on (0: full resolution, as the original)
    max_features: int = 500          # strongest keypoints kept per frame (0: all, as the original); matching is quadratic
    matcher: str = "bf"              # bf | flann (the original's FLANN call, whose index type 0 is exact linear search)
    quality_gate: bool = True        # reject weak or extreme homographies (reason recorded)
    min_inliers: int = 12
    max_reprojection: float = 2.0    # RMS of the inliers, in pixels of the written clips (video_size squares)
    max_scale_change: float = 0.15   # per frame: |scale - 1| of the similarity part
    max_shear: float = 0.15          # per frame: |anisotropy| of the affine part
    max_perspective: float = 0.25    # per frame: relative scale spread over the frame (|h31| W + |h32| H)
    max_residual: float = 0.5        # a written clip moving more than this (dominant motion, output px per frame) is dropped
                                     # (0: off); 0.5: 95 % of the original's kept clips on the bench's tuning videos move less
    scene_cuts: bool = True          # end a clip at a cut instead of straddling it
    cut_threshold: float = 0.2       # a cut: Bhattacharyya distance between consecutive HSV histograms above this
    cut_change: float = 25.0         # ... and mean |difference| of 32x24 grey thumbnails (0-255) above this (cuts.py)
    restart_at_unmatched: bool = True  # an unmatched frame starts the next clip (the original skipped it)
    keep_before_unmatched: bool = True  # ... and ends the clip it failed to join, which is kept if its frames before
                                        # it are min_frames or more (the original dropped the whole clip)
    lookahead: int = 4               # frames described (large ones also decoded) ahead, a thread each
                                     # (0: one thread, as the original)
    warp_full_frame: bool = False    # warp every frame at full resolution, then resize (the original); else frames
                                     # over twice the output's side go straight into it (stabilizer.direct_square)
    fps: float = 0.0                 # resample to this frame rate (0: native, as the original)
    decoder: str = "opencv"          # opencv (OpenCV's FFmpeg libraries in this process; the program where they cannot
                                     # follow) | ffmpeg (the ffmpeg program through a pipe, as the original; video.frames)

    def __post_init__(self):
        if not (isinstance(self.corner_every, int) and self.corner_every >= 1):
            raise SettingError(f"corner_every must be a whole number >= 1 (1: corners on every frame), "
                               f"got {self.corner_every!r}")
        if not (isinstance(self.flow_coarse_window, int) and (self.flow_coarse_window == 0 or self.flow_coarse_window >= 3)):
            raise SettingError(f"flow_coarse_window must be 0 (flow_window on every level) or a whole number >= 3 "
                               f"(pixels), got {self.flow_coarse_window!r}")
        if not (isinstance(self.flow_guides, int) and (self.flow_guides == 0 or self.flow_guides >= GUIDES_FOLLOWED_MIN)):
            raise SettingError(f"flow_guides must be 0 (no second try) or a whole number >= {GUIDES_FOLLOWED_MIN}, "
                               f"got {self.flow_guides!r}")
        check_decoder(self.decoder)

    @classmethod
    def faithful(cls, **overrides):
        """The original algorithm: full-resolution SIFT + FLANN (exact), no quality gates, no cut detection;
        a frame that fails to match is skipped; one thread; the ffmpeg program's frames."""
        values = dict(motion="features", features="sift", feature_size=0, max_features=0, matcher="flann",
                      quality_gate=False, max_residual=0.0, scene_cuts=False,
                      restart_at_unmatched=False, keep_before_unmatched=False, lookahead=0, warp_full_frame=True,
                      decoder="ffmpeg")
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_options(cls, faithful=False, settings=(), scene_cuts=True, quality_gate=True, **named):
        """The configuration the ``stabilize`` command's options describe: ``named`` fields (None: not
        given), the two switches that turn defaults off, then ``--set KEY=VALUE`` items, on top of the
        original's setup (``faithful``) or the default."""
        overrides = {k: v for k, v in named.items() if v is not None}
        overrides.update({k: False for k, on in (("scene_cuts", scene_cuts), ("quality_gate", quality_gate)) if not on})
        overrides.update(cls.parse_settings(settings))
        return cls.faithful(**overrides) if faithful else cls(**overrides)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def parse_settings(cls, settings):
        """["ratio=0.8", "scene_cuts=false", ...] -> typed overrides; unknown keys and bad values are errors."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        out = {}
        for item in settings:
            key, sep, text = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in fields:
                raise SettingError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
            kind = type(fields[key].default)
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise SettingError(f"--set {item!r}: {key} takes true or false")
                out[key] = text.lower() in ("true", "1", "yes")
                continue
            try:
                out[key] = kind(text)
            except ValueError:
                raise SettingError(f"--set {item!r}: {key} takes a {kind.__name__}") from None
        return out
