"""One error for "this file cannot be used": it names the file and the reason, so a long run can
report it, count it and go on (strips, videos and images all raise a subclass)."""


class FileProblem(Exception):
    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason
