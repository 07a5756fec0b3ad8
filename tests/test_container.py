"""Static checks of the container build (tests/test_container_run.py builds and runs it).

Checks: slim pinned base image, a non-root user, pinned requirements installed before the code,
requirements.txt closed under dependencies (the image installs it with --no-deps), gunicorn as
the command with the repo's config, and a HEALTHCHECK on /healthz where gunicorn listens
(healthcheck.py, which works the address out with gunicorn's own configuration code).
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
from flask import Flask
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import healthcheck
from scim_bridge.sandbox.server import ServerThread

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


def test_healthcheck_runs_the_probe_script_copied_into_the_image() -> None:
    # Was: a hard-coded 127.0.0.1:8080 probe, wrong for any other SCIM_BRIDGE_BIND (issue 17).
    checks = [rest for kw, rest in _instructions() if kw == "HEALTHCHECK"]
    assert checks
    assert json.loads(checks[-1].split("CMD", 1)[1]) == ["python", "/app/healthcheck.py"]
    copied = " ".join(rest for kw, rest in _instructions() if kw == "COPY")
    assert "healthcheck.py" in copied
    assert (
        json.loads([rest for kw, rest in _instructions() if kw == "CMD"][-1])
        == healthcheck.DEFAULT_COMMAND
    )


@pytest.mark.parametrize(
    ("env", "command", "expected"),
    [
        ({}, None, [("127.0.0.1", 8080)]),  # gunicorn.conf.py's default 0.0.0.0:8080
        ({"SCIM_BRIDGE_BIND": "127.0.0.1:9000"}, None, [("127.0.0.1", 9000)]),
        ({"SCIM_BRIDGE_BIND": "[::]:8081"}, None, [("::1", 8081)]),
        ({"SCIM_BRIDGE_BIND": "10.1.2.3"}, None, [("10.1.2.3", 8000)]),  # gunicorn's port
        ({"SCIM_BRIDGE_BIND": "unix:/run/b.sock"}, None, ["/run/b.sock"]),
        ({"GUNICORN_CMD_ARGS": "--bind 127.0.0.1:7000"}, None, [("127.0.0.1", 7000)]),
        (
            {},
            ["gunicorn", "-b", ":7001", "-c", "gunicorn.conf.py", "wsgi:app"],
            [("127.0.0.1", 7001)],
        ),
    ],
)
def test_healthcheck_probes_where_gunicorn_listens(
    env: dict[str, str],
    command: list[str] | None,
    expected: list[object],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Set, so that loading gunicorn.conf.py leaves this process's environment as it was.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("SCIM_BRIDGE_BIND", "GUNICORN_CMD_ARGS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    addresses = healthcheck.listen_addresses(command or healthcheck.DEFAULT_COMMAND)
    assert [
        healthcheck.probe_target(a)[0] if isinstance(a, str) else healthcheck.probe_target(a)
        for a in addresses
    ] == expected


def test_healthcheck_reads_the_command_pid_1_runs(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/opt/venv/bin/python\0/opt/venv/bin/gunicorn\0-b\0:9\0wsgi:app\0")
    assert healthcheck.server_command(cmdline) == ["gunicorn", "-b", ":9", "wsgi:app"]
    cmdline.write_bytes(b"python\0-m\0scim_bridge\0worker\0")
    with pytest.raises(SystemExit, match="not gunicorn"):
        healthcheck.server_command(cmdline)
    assert healthcheck.server_command(tmp_path / "absent") == healthcheck.DEFAULT_COMMAND


def test_healthcheck_fails_when_nothing_answers_and_honours_script_name() -> None:
    app = Flask("probe")
    app.add_url_rule("/mount/healthz", "h", lambda: "ok")
    with ServerThread(app) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert healthcheck.check(("127.0.0.1", port), "/mount") is None
        assert "HTTP 404" in (healthcheck.check(("127.0.0.1", port)) or "")
    assert "refused" in (healthcheck.check(("127.0.0.1", port)) or "")


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
