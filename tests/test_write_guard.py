"""The write guard (``tests/write_guard.py``): each test runs in a temporary directory, and a run
that writes into the checkout fails. Each test runs pytest on a small project of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.write_guard import changes, listing

GUARD = ("-p", "tests.write_guard", "-p", "no:cacheprovider")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytest project in a temporary directory, configured like ours (pytest-asyncio's loop scope)."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_a_test_writing_into_the_checkout_fails_the_run(project: pytest.Pytester) -> None:
    """A passing test that writes a file into the rootdir by absolute path makes the run exit 1, naming the file."""
    project.makepyfile(
        """
        def test_writes_into_the_checkout(request):
            (request.config.rootpath / "stray.db").write_text("x")
        """
    )
    result = project.runpytest(*GUARD)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*files written outside temporary directories*", f"*new*{project.path / 'stray.db'}"])


def test_changed_and_removed_files_are_named(project: pytest.Pytester) -> None:
    """A file of the checkout that a test changes or removes is reported as such, and the run fails."""
    project.makefile(".yaml", kept="a: 1\n", gone="b: 2\n")
    project.makepyfile(
        """
        def test_touches_the_checkout(request):
            root = request.config.rootpath
            (root / "kept.yaml").write_text("a: 2, longer\\n")
            (root / "gone.yaml").unlink()
        """
    )
    result = project.runpytest(*GUARD)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [f"*changed*{project.path / 'kept.yaml'}", f"*removed*{project.path / 'gone.yaml'}"]
    )


def test_relative_paths_land_in_the_tests_temporary_directory(project: pytest.Pytester) -> None:
    """A relative write, in a test, a session fixture or a process a test spawns, lands in a temporary
    directory: the run passes and the rootdir holds no new file."""
    project.makepyfile(
        """
        import subprocess, sys
        from pathlib import Path
        import pytest

        @pytest.fixture(scope="session")
        def session_file():
            Path("session.db").write_text("x")
            return Path("session.db").absolute()

        def test_relative(tmp_path, session_file, request):
            Path("breakwater-ledger.db").write_text("x")
            subprocess.run([sys.executable, "-c", "open('spawned.db', 'w').close()"], check=True)
            assert (tmp_path / "breakwater-ledger.db").exists() and (tmp_path / "spawned.db").exists()
            assert not session_file.is_relative_to(request.config.rootpath)
        """
    )
    before = sorted(p.name for p in project.path.iterdir())
    result = project.runpytest(*GUARD)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "files written outside" not in result.stdout.str()
    assert sorted(p.name for p in project.path.iterdir() if p.name != "__pycache__") == before


def test_tool_directories_are_not_watched(tmp_path: Path) -> None:
    """Files under __pycache__, .git, virtualenvs and a skipped temporary directory are left out of the listing."""
    for name in ("__pycache__/m.pyc", ".git/index", ".venv/lib/x.py", "pkg.egg-info/PKG-INFO", "tmp/t.db", "src/m.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    files = listing(tmp_path, skip=frozenset({tmp_path / "tmp"}))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == ["src", "src/m.py"]


def test_a_non_recursive_listing_sees_only_the_top_level(tmp_path: Path) -> None:
    """The starting directory is watched at its top level: a new entry there counts, one deeper does not."""
    (tmp_path / "sub").mkdir()
    before = listing(tmp_path, recursive=False)
    (tmp_path / "sub" / "deep.db").write_text("x")
    (tmp_path / "top.db").write_text("x")
    assert changes(before, listing(tmp_path, recursive=False)) == [f"new      {tmp_path / 'top.db'}"]
