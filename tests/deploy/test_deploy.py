"""deploy/: what can be checked without building images. The Dockerfiles parse into instructions (FROM first,
a non-root USER before the command, every COPY source in the repository and not ignored), compose.yaml
runs console scripts of pyproject.toml with options their parsers accept, and the systemd unit parses, names an
installed console script and passes ``systemd-analyze verify`` where that tool exists."""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from reidstream.pipeline.app.cli import stream_config_from_args, stream_parser
from reidstream.pipeline.config import parse_args_with_overrides

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILES = ("Dockerfile", "Dockerfile.gpu")
UNIT = DEPLOY / "systemd" / "reid-stream@.service"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SCRIPTS = PYPROJECT["project"]["scripts"]
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])


def parsers() -> dict:
    from reidstream.export.cli import _parser as export_parser

    return {"reid-stream": stream_parser, "reid-export": export_parser}


# --- Dockerfiles ---------------------------------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments and parser directives dropped, continuations joined."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # comment lines inside a continued instruction are skipped
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        assert word.isalpha(), f"not a Dockerfile instruction: {full!r}"
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
               or path.startswith(p.rstrip("/") + "/") for p in patterns)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_parses_runs_as_non_root_and_copies_what_exists(name):
    ins = dockerfile_instructions((DEPLOY / name).read_text(encoding="utf-8"))
    words = [w for w, _ in ins]
    assert [w for w in words if w != "ARG"][0] == "FROM", "the first instruction (after ARGs) must be FROM"
    final = max(i for i, w in enumerate(words) if w == "FROM")
    stage = ins[final:]
    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{name}: the final stage must run as non-root"
    first_cmd = min(i for i, (w, _) in enumerate(stage) if w in ("CMD", "ENTRYPOINT"))
    assert any(w == "USER" for w, _ in stage[:first_cmd]), f"{name}: USER must come before CMD / ENTRYPOINT"

    ignore_file = DEPLOY / f"{name}.dockerignore"
    patterns = [p.strip() for p in ignore_file.read_text().splitlines() if p.strip() and not p.startswith("#")]
    copies = [a for w, a in ins if w in ("COPY", "ADD")]
    assert copies
    for args in copies:
        parts = [p for p in exec_form(args) if not p.startswith("--")]
        if any(p.startswith("--from") for p in exec_form(args)):
            continue  # from another stage, not the build context
        for src in parts[:-1]:
            assert (REPO / src).exists(), f"{name}: COPY {src}: not in the repository (the build context)"
            assert not ignored(src, patterns), f"{name}: COPY {src} is excluded by {ignore_file.name}"

    extras = [a.split("=", 1)[1] for w, a in ins if w == "ARG" and a.startswith("EXTRAS=")]
    assert extras and set(extras[0].split(",")) <= EXTRAS, f"{name}: extras {extras} not all in pyproject {EXTRAS}"
    entry = exec_form(next(a for w, a in stage[::-1] if w == "ENTRYPOINT"))
    assert entry[0] in SCRIPTS, f"{name}: ENTRYPOINT {entry[0]} is not a console script of pyproject.toml"
    check_command(entry[0], exec_form(next(a for w, a in stage[::-1] if w == "CMD")), f"{name} CMD")


def test_gpu_image_is_on_an_nvidia_tensorrt_base():
    ins = dockerfile_instructions((DEPLOY / "Dockerfile.gpu").read_text(encoding="utf-8"))
    base = next(a for w, a in ins if w == "ARG" and a.startswith("BASE="))
    assert base.startswith("BASE=nvcr.io/nvidia/tensorrt:")


# --- compose.yaml --------------------------------------------------------------------------------------------------

def interpolate(text: str) -> str:
    """Compose's ``${VAR:-default}`` -> default, ``${VAR:?message}`` / ``${VAR}`` -> a sample value."""
    return re.sub(r"\$\{(\w+)(?::([-?])([^}]*))?\}",
                  lambda m: m.group(3) if m.group(2) == "-" else f"sample-{m.group(1).lower()}", text)


def check_command(script: str, argv: list[str], where: str) -> None:
    """``argv`` parses with ``script``'s parser; reid-stream's also makes a valid config."""
    assert script in SCRIPTS, f"{where}: {script} is not a console script of pyproject.toml"
    assert shutil.which(script), f"{where}: {script} is not installed (pip install -e .)"
    parser = parsers()[script]()
    args = list(argv)
    try:
        ns = parse_args_with_overrides(parser, args) if script == "reid-stream" else parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"{where}: {script} does not accept {args}")
    if script == "reid-stream":
        stream_config_from_args(ns)  # raises ConfigError naming a bad value (e.g. the metrics address)


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_two_camera_workers_sharing_redis_and_an_optional_triton():
    c = compose()
    services = c["services"]
    entrypoint = exec_form(next(a for w, a in dockerfile_instructions((DEPLOY / "Dockerfile").read_text())[::-1]
                                if w == "ENTRYPOINT"))
    ours = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("reid-stream")}
    workers = [n for n, s in ours.items() if "entrypoint" not in s]
    assert len(workers) >= 2, f"expected two camera workers, got {workers}"
    galleries, ports = set(), []
    for name, s in ours.items():
        build = s.get("build")
        if build is not None:
            assert (DEPLOY / build["context"] / build["dockerfile"]).resolve().is_file()
        argv = [interpolate(str(a)) for a in s["command"]]
        script = s.get("entrypoint", entrypoint)[0]
        check_command(script, argv, f"compose service {name}")
        if name in workers:
            galleries.add(argv[argv.index("--gallery") + 1])
            assert argv[argv.index("--metrics") + 1] == "0.0.0.0:9108"
            assert "redis" in s["depends_on"]
            ports += s["ports"]
    assert galleries == {"redis://redis:6379/0"} and "redis" in services
    assert all(p.startswith("127.0.0.1:") for p in ports) and len(set(ports)) == len(ports), ports
    assert services["triton"]["profiles"] == ["triton"] and "tritonserver" in services["triton"]["image"]
    assert "--model-repository=/models/repo" in services["triton"]["command"]
    repo_cmd = services["triton-repo"]["command"]
    assert repo_cmd[:1] == ["triton"] and repo_cmd[repo_cmd.index("--out") + 1].endswith("/repo")


# --- systemd -------------------------------------------------------------------------------------------------------

def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(UNIT.read_text(encoding="utf-8"))
    return cp


def example_env() -> dict[str, str]:
    lines = (DEPLOY / "systemd" / "example.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def exec_start_argv(exec_start: str, env: dict[str, str], instance: str) -> list[str]:
    """systemd's expansion: ``${VAR}`` one word, ``$VAR`` split on whitespace, ``%i`` the instance."""
    words = []
    for word in shlex.split(exec_start.replace("%i", instance)):
        if re.fullmatch(r"\$\w+", word):
            words += env.get(word[1:], "").split()
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def test_systemd_unit_has_the_keys_and_runs_an_installed_console_script():
    cp = unit()
    s = cp["Service"]
    assert s["User"] not in ("root", "0") and s["Restart"] == "on-failure" and s["KillSignal"] == "SIGTERM"
    assert int(s["TimeoutStopSec"]) >= 10 and s["EnvironmentFile"] == "/etc/reid-stream/%i.env"
    assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict"
    assert cp["Install"]["WantedBy"] == "multi-user.target"
    argv = exec_start_argv(s["ExecStart"], example_env(), "hall")
    assert Path(argv[0]).is_absolute()
    check_command(Path(argv[0]).name, argv[1:], "reid-stream@.service ExecStart")
    assert argv[argv.index("--output") + 1] == "/var/lib/reid-stream/hall"


def test_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (systemd hosts have it)")
    # verify checks that ExecStart is executable: point it at the console script installed here
    text = UNIT.read_text(encoding="utf-8").replace("/opt/reid-stream/venv/bin/reid-stream",
                                                    shutil.which("reid-stream"))
    path = tmp_path / "reid-stream@hall.service"
    path.write_text(text, encoding="utf-8")
    r = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (r.stdout + r.stderr).splitlines() if str(path.name) in line or "reid" in line]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr
