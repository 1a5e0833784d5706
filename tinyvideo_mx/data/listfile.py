"""List files as the original reads them (donkey_video2.lua:31-37): one clip per line; the first
whitespace-separated token is a path relative to the data root; extra tokens are ignored (the UCF
variant reads token 2 as an integer class, see ``read_labelled_list``)."""
import os

from ..fsutil import write_text_atomic


class ListFileError(Exception):
    pass


def _lines(list_path):
    try:
        with open(list_path, encoding="utf-8") as f:
            return [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
    except FileNotFoundError:
        raise ListFileError(f"{list_path}: list file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ListFileError(f"{list_path}: cannot read list file ({e})") from None


def default_root(list_path, data_root=None):
    """Paths are relative to ``data_root``; by default, to the folder holding the list file."""
    return data_root if data_root is not None else os.path.dirname(os.path.abspath(list_path))


def read_list(list_path, data_root=None):
    """Absolute paths of the clips listed in ``list_path``."""
    root = default_root(list_path, data_root)
    paths = [os.path.join(root, tokens[0]) for _, tokens in _lines(list_path)]
    if not paths:
        raise ListFileError(f"{list_path}: list file has no entries")
    return paths


def read_labelled_list(list_path, data_root=None):
    """(paths, labels) from a ``path class`` list (the original's UCF101 format)."""
    root = default_root(list_path, data_root)
    paths, labels = [], []
    for number, tokens in _lines(list_path):
        if len(tokens) < 2:
            raise ListFileError(f"{list_path}:{number}: expected 'path class', got {' '.join(tokens)!r}")
        try:
            labels.append(int(tokens[1]))
        except ValueError:
            raise ListFileError(f"{list_path}:{number}: class {tokens[1]!r} is not an integer") from None
        paths.append(os.path.join(root, tokens[0]))
    if not paths:
        raise ListFileError(f"{list_path}: list file has no entries")
    return paths, labels


def write_list(list_path, entries):
    """Write entries (relative paths, or lines) one per line, atomically."""
    write_text_atomic(list_path, "".join(f"{e}\n" for e in entries))
