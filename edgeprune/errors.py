"""User-facing errors: one line naming the problem and the fix; the CLI prints them without a traceback."""

from __future__ import annotations


class EdgepruneError(Exception):
    """An error caused by user input or environment, with a hint on how to fix it."""

    exit_code: int = 2  # what the CLI exits with (a subclass for "no model meets the contract" uses 3)

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.problem}. {self.fix}" if self.fix else self.problem


class MissingExtraError(EdgepruneError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        how = ("make install-tf (scripts/install_tf_extra.sh: onnx2tf must be installed with --no-deps)"
               if extra == "tf" else f"pip install -c constraints.txt 'edgeprune[{extra}]'")
        super().__init__(f"the optional dependency '{module}' is not installed",
                         f"install edgeprune[{extra}] with: {how}")
        self.extra = extra
