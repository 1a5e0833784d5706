"""The data path: JPEG strips + list files -> (N, 3, T, S, S) batches in [-1, 1].

Strips and list files need no MXNet (the stabiliser writes them and starts in well under a second); the
``mx.io.DataIter`` that batches them is ``tinyvideo_mx.data.iterator``.
"""
from .listfile import read_list, write_list
from .strips import StripError, decode_strip, encode_strip, load_strip, write_strip

__all__ = ["read_list", "write_list", "StripError", "decode_strip", "encode_strip", "load_strip", "write_strip"]
