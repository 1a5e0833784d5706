"""List files as the original reads them (donkey_video2.lua:31-37), and as people write them.

One clip per line, paths relative to the data root. The original takes the first whitespace-separated
token and ignores the rest (the UCF variant reads token 2 as an integer class, ``read_labelled_list``).
Here, in addition: a line that names an existing file as a whole is that file (``clips/with space.jpg``
is one path, not ``clips/with``); blank lines and lines starting with ``#`` are skipped and never count as
clips; a line with a NUL byte or bytes that are not UTF-8 is an error naming the file and line number.
"""
import os

from ..errors import FileProblem, TinyVideoError
from ..fsutil import read_regular_file, write_text_atomic

MAX_LIST_BYTES = 256 * 2 ** 20    # a million clips with 256-character paths


class ListFileError(TinyVideoError):
    pass


def _lines(list_path):
    """(line number, text) of every line that is not blank or a comment."""
    try:
        raw = read_regular_file(list_path, MAX_LIST_BYTES, "list file")
    except FileProblem as e:
        reason = "list file not found" if e.reason == "file not found" else e.reason
        raise ListFileError(f"{list_path}: {reason}") from None
    out = []
    for number, line in enumerate(raw.splitlines(), 1):
        if b"\0" in line:
            raise ListFileError(f"{list_path}:{number}: NUL byte in the line (is this a list file?)")
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ListFileError(f"{list_path}:{number}: not UTF-8 text (is this a list file?)") from None
        if text and not text.startswith("#"):
            out.append((number, text))
    return out


def _path_of(root, text):
    """The whole line if it names an existing file, else its first token (the original's rule)."""
    whole = os.path.join(root, text)
    return whole if os.path.isfile(whole) else os.path.join(root, text.split()[0])


def default_root(list_path, data_root=None):
    """Paths are relative to ``data_root``; by default, to the folder holding the list file."""
    return data_root if data_root is not None else os.path.dirname(os.path.abspath(list_path))


def read_list(list_path, data_root=None):
    """Absolute paths of the clips listed in ``list_path``."""
    root = default_root(list_path, data_root)
    paths = [_path_of(root, text) for _, text in _lines(list_path)]
    if not paths:
        raise ListFileError(f"{list_path}: list file has no entries")
    return paths


def read_labelled_list(list_path, data_root=None):
    """(paths, labels) from a ``path class`` list (the original's UCF101 format); the class is the last
    token, so a path may contain spaces."""
    root = default_root(list_path, data_root)
    paths, labels = [], []
    for number, text in _lines(list_path):
        tokens = text.split()
        if len(tokens) < 2:
            raise ListFileError(f"{list_path}:{number}: expected 'path class', got {text!r}")
        path_part, last = text.rsplit(None, 1)
        if os.path.isfile(os.path.join(root, path_part)):   # "path with spaces 3": the class is last
            path, label = os.path.join(root, path_part), last
        else:                                               # the original: path, class, the rest ignored
            path, label = os.path.join(root, tokens[0]), tokens[1]
        try:
            labels.append(int(label))
        except ValueError:
            raise ListFileError(f"{list_path}:{number}: class {label!r} is not an integer") from None
        paths.append(path)
    if not paths:
        raise ListFileError(f"{list_path}: list file has no entries")
    return paths, labels


def write_list(list_path, entries):
    """Write entries (relative paths, or lines) one per line, atomically."""
    write_text_atomic(list_path, "".join(f"{e}\n" for e in entries))
