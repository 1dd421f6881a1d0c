"""Another commit's checkout for one run: a detached git worktree in a temporary folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Checkout:
    """A worktree of ``rev`` (its short hash ``commit``) at ``path``."""

    rev: str
    commit: str
    path: Path

    @property
    def label(self) -> str:
        """``HEAD~1, 676a3d2``."""
        return f"{self.rev}, {self.commit}" if self.rev != self.commit else self.commit


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()} (--previous '' skips it)")
    return done.stdout.strip()


@contextmanager
def previous_checkout(rev: str) -> Iterator[Checkout | None]:
    """A detached worktree of ``rev`` (None for ``''``), removed with ``--force`` after."""
    if not rev:
        yield None
        return
    commit = _git("rev-parse", "--short", f"{rev}^{{commit}}")
    folder = Path(tempfile.mkdtemp(prefix="kpi-previous-"))
    path = folder / "checkout"
    _git("worktree", "add", "--detach", str(path), commit)
    try:
        if not (path / "streams" / "cli.py").is_file():
            raise RuntimeError(f"{rev} ({commit}) has no streams/cli.py")
        yield Checkout(rev, commit, path)
    finally:
        _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(folder, ignore_errors=True)
