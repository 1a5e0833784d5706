"""The data path: JPEG strips + list files -> (N, 3, T, S, S) batches in [-1, 1]."""
from .listfile import read_list, write_list
from .strips import StripError, decode_strip, encode_strip, load_strip, write_strip
from .iterator import StripIter, TooManyBadClips, every_clip

__all__ = ["read_list", "write_list", "StripError", "decode_strip", "encode_strip", "load_strip",
           "write_strip", "StripIter", "TooManyBadClips", "every_clip"]
