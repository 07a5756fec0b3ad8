"""Static checks of the container build: no Docker engine runs here, so what can be read is read.

Checks: slim pinned base image, a non-root user, pinned requirements installed before the code,
requirements.txt closed under dependencies (the image installs it with --no-deps), gunicorn as
the command with the repo's config, and a HEALTHCHECK on /healthz.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _pinned(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-r"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path.name}: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version
    return pins


def test_base_image_is_slim_python_with_a_fixed_version() -> None:
    froms = [rest for kw, rest in _instructions() if kw == "FROM"]
    assert froms, "no FROM"
    image = froms[-1].split()[0]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image), image


def test_runs_as_a_non_root_user() -> None:
    users = [rest for kw, rest in _instructions() if kw == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_command_is_gunicorn_serving_wsgi_app_with_the_repo_config() -> None:
    cmds = [rest for kw, rest in _instructions() if kw == "CMD"]
    command = json.loads(cmds[-1])  # exec form, so signals reach gunicorn
    assert command[0] == "gunicorn"
    assert command[-1] == "wsgi:app"
    assert "gunicorn.conf.py" in command
    copied = " ".join(rest for kw, rest in _instructions() if kw == "COPY")
    assert "gunicorn.conf.py" in copied
    assert "wsgi.py" in copied


def test_healthcheck_probes_healthz() -> None:
    checks = [rest for kw, rest in _instructions() if kw == "HEALTHCHECK"]
    assert checks
    assert "/healthz" in checks[-1]
    assert "8080" in checks[-1]


def test_pinned_requirements_are_installed_before_the_code_is_copied() -> None:
    steps = _instructions()
    req_copy = next(
        i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and "requirements" in rest
    )
    install = next(
        i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "requirements.txt" in rest
    )
    code_copy = next(
        i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and "scim_bridge" in rest
    )
    assert req_copy < install < code_copy


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_is_pinned(name: str) -> None:
    assert _pinned(ROOT / name)


def test_runtime_requirements_are_closed_under_dependencies() -> None:
    """The image installs requirements.txt with --no-deps: nothing it needs may be missing."""
    pins = _pinned(ROOT / "requirements.txt")
    env = default_environment()
    missing = []
    for dist in pins:
        for spec in metadata.requires(dist) or []:
            req = Requirement(spec)
            if req.marker and not req.marker.evaluate({**env, "extra": ""}):
                continue
            if canonicalize_name(req.name) not in pins:
                missing.append(f"{dist} needs {req.name}")
    assert not missing


def test_project_dependencies_are_all_pinned_in_requirements() -> None:
    """pyproject.toml's ranges and requirements.txt's pins name the same top-level packages."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pinned(ROOT / "requirements.txt")
    for spec in project["dependencies"]:
        req = Requirement(spec)
        assert canonicalize_name(req.name) in pins, req.name
        assert req.specifier.contains(pins[canonicalize_name(req.name)]), req


def test_installed_versions_match_the_pins() -> None:
    """What the tests ran against is what the image will install."""
    pins = {**_pinned(ROOT / "requirements.txt"), **_pinned(ROOT / "requirements-dev.txt")}
    for dist, version in pins.items():
        assert metadata.version(dist) == version, dist
