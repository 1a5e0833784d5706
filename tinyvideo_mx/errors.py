"""The project's one error family.

Every *expected* failure - a bad file, a bad setting, a damaged checkpoint, a full disk - is a
``TinyVideoError`` whose message is one line naming the file or option and the problem. The CLI catches
exactly this family and prints that line; anything else is a bug and keeps its traceback.
"""


class TinyVideoError(Exception):
    """Base of every expected failure; ``str(e)`` is the one line a user sees."""


class SettingError(TinyVideoError, ValueError):
    """A setting or argument that cannot work (also a ValueError, which it is)."""


class FileProblem(TinyVideoError):
    """This file cannot be used: names the file and the reason, so a long run can report it, count it
    and go on (strips, videos and images all raise a subclass)."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason
