"""Tests write only in temporary directories: a pytest plugin that makes it so and checks it.

A config that leaves a path at its relative default (``sqlite:///breakwater-ledger.db``, the
spool, the key store and its hash secret) writes into the current directory, and a run started in
the checkout used to leave a ledger there that ``breakwater usage`` then showed. So:

- every test runs in a fresh temporary directory of its own (its ``tmp_path``), and
  session-scoped fixtures in one made for the session: relative paths land there, and so do
  the files of any process a test spawns, since it inherits the directory;
- the files under the checkout (the rootdir) are listed when the session starts and again when
  it ends, after the session's fixtures are torn down; a file that is new, changed or gone fails
  the run (exit status 1), each one named. The directory pytest was started from is watched
  too, when it is outside the checkout (its top level only: it may be a home directory).

Directories that Python, the tools and the environment write to are not watched (``.git``,
virtualenvs, ``__pycache__``, tool caches, ``*.egg-info``), nor a temporary directory inside the
checkout (``--basetemp``, ``TMPDIR``). Editing a file in the checkout while the tests run shows
up too: run again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

#: written by Python, git, pip, the linters and the test runner, or someone's environment
UNWATCHED_DIRS = frozenset(
    {
        ".git",
        ".venv",
        ".ci-venv",
        ".venv-litellm",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".import_linter_cache",
    }
)

#: path -> (modification time in ns, size); a directory is (-1, -1): only its appearance counts
Listing = dict[Path, tuple[int, int]]


def listing(root: Path, *, recursive: bool = True, skip: frozenset[Path] = frozenset()) -> Listing:
    """What is under ``root``, leaving out ``UNWATCHED_DIRS``, ``*.egg-info`` and the ``skip`` paths.

    Args:
        root: the directory to list.
        recursive: ``False`` lists only ``root``'s own entries.
        skip: absolute directories not to enter (temporary directories inside ``root``).
    """
    found: Listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [
            d for d in dirnames if d not in UNWATCHED_DIRS and not d.endswith(".egg-info") and here / d not in skip
        ]
        for name in dirnames:
            found[here / name] = (-1, -1)
        for name in filenames:
            try:
                stat = (here / name).lstat()
            except FileNotFoundError:  # removed between the listing and the stat
                continue
            found[here / name] = (stat.st_mtime_ns, stat.st_size)
        if not recursive:
            break
    return found


def changes(before: Listing, after: Listing) -> list[str]:
    """One line per path that is new, changed or gone between two listings, in path order."""
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            lines.append(f"new      {path}")
        elif path not in after:
            lines.append(f"removed  {path}")
        elif before[path] != after[path]:
            lines.append(f"changed  {path}")
    return lines


class WriteGuard:
    """Lists the watched directories at session start and compares at session end."""

    def __init__(self, config: pytest.Config) -> None:
        root = config.rootpath.absolute()
        start = config.invocation_params.dir.absolute()
        temporary = [Path(tempfile.gettempdir()).absolute()]
        if config.option.basetemp:
            temporary.append(Path(config.option.basetemp).absolute())
        self._skip = frozenset(temporary)
        #: (directory, recursive)
        self._watched = [(root, True)]
        if not start.is_relative_to(root):
            self._watched.append((start, False))
        self._before: Listing = {}
        self.found: list[str] = []

    def _list(self) -> Listing:
        out: Listing = {}
        for directory, recursive in self._watched:
            out.update(listing(directory, recursive=recursive, skip=self._skip))
        return out

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._before = self._list()

    @pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down (servers flush then)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.found = changes(self._before, self._list())
        if self.found and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.found:
            return
        terminalreporter.write_sep("=", "files written outside temporary directories", red=True, bold=True)
        terminalreporter.write_line(
            "A test may write only under tmp_path (or another temporary directory); these changed during the run:"
        )
        for line in self.found:
            terminalreporter.write_line(f"  {line}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(WriteGuard(config), "breakwater-write-guard")


@pytest.fixture(autouse=True, scope="session")
def _session_in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session- and module-scoped fixtures (gateways, spawned processes) run in a temporary directory."""
    previous = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(autouse=True)
def _test_in_its_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own ``tmp_path``: relative paths, and spawned processes, land there."""
    monkeypatch.chdir(tmp_path)
