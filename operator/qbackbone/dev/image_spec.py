"""What the repository's Dockerfile says, read so that ``qbackbone dev image`` builds the same
image without Docker: the base's Python version, the build stage's context and wheel command,
the final stage's setup and install commands, USER, ENV, ENTRYPOINT and CMD.

The parser knows only the instructions the Dockerfile uses; any other one is an error, so a
change to the Dockerfile the Docker-less build does not follow fails loudly (and the unit test
``tests/unit/test_image_in_step.py`` with it).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "Dockerfile"
KNOWN = {"FROM", "WORKDIR", "COPY", "RUN", "USER", "ENV", "ENTRYPOINT", "CMD"}


class DockerfileError(ValueError):
    """The Dockerfile uses something the Docker-less build does not reproduce."""


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword and its raw argument text."""

    keyword: str
    args: str


@dataclass
class Stage:
    """A ``FROM`` stage and its instructions."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class DockerfileSpec:
    """The parts of the Dockerfile the build reproduces."""

    base_image: str              # e.g. python:3.11-slim (both stages)
    python_version: str          # "3.11"
    build_workdir: str           # the build stage's WORKDIR (its context root)
    build_copies: tuple[str, ...]  # sources the build stage copies from the context
    wheel_command: tuple[str, ...]  # argv of the build stage's RUN (pip wheel ...)
    wheel_dir: str               # the --wheel-dir it writes, copied into the final stage
    setup_commands: tuple[str, ...]  # final-stage RUNs before the wheels arrive (useradd)
    install_command: str         # the final-stage RUN that installs the wheels (shell form)
    user: str
    env: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]

    @property
    def user_uid(self) -> int:
        """The numeric USER (the chart's runAsNonRoot needs a number)."""
        if not self.user.isdigit():
            raise DockerfileError(f"USER {self.user!r}: a numeric uid is expected")
        return int(self.user)


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile text (comments dropped, continuations joined)."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    if pending:
        raise DockerfileError("the Dockerfile ends inside a continued line")
    return result


def stages(text: str) -> list[Stage]:
    """The Dockerfile's stages in order; unknown instructions are refused."""
    result: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword not in KNOWN:
            raise DockerfileError(f"{ins.keyword} is not reproduced by the Docker-less build")
        if ins.keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", ins.args, flags=re.I)
            if not match:
                raise DockerfileError(f"FROM {ins.args!r}")
            result.append(Stage(match.group(1), match.group(2)))
        elif not result:
            raise DockerfileError(f"{ins.keyword} before FROM")
        else:
            result[-1].instructions.append(ins)
    return result


def _exec_form(ins: Instruction) -> tuple[str, ...]:
    try:
        value = json.loads(ins.args)
    except json.JSONDecodeError as exc:
        raise DockerfileError(f"{ins.keyword} must be in exec (JSON) form: {ins.args}") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DockerfileError(f"{ins.keyword} must be a JSON list of strings: {ins.args}")
    return tuple(value)


def _env(args: str) -> list[tuple[str, str]]:
    words = shlex.split(args)
    if len(words) >= 1 and "=" not in words[0]:  # legacy ENV KEY value
        return [(words[0], " ".join(words[1:]))]
    return [tuple(w.split("=", 1)) for w in words]  # type: ignore[misc]


def _option(argv: tuple[str, ...], name: str) -> str:
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    raise DockerfileError(f"{' '.join(argv)}: no {name}")


def parse(text: str) -> DockerfileSpec:
    """Read a two-stage Dockerfile of the shape the repository's has."""
    all_stages = stages(text)
    if len(all_stages) != 2:
        raise DockerfileError(f"{len(all_stages)} stages; the build reproduces two (build, final)")
    build, final = all_stages
    if build.image != final.image:
        raise DockerfileError(f"stages on different bases: {build.image}, {final.image}")
    version = re.fullmatch(r"(?:docker\.io/(?:library/)?)?python:(\d+\.\d+)(?:\.\d+)?-slim\S*",
                           build.image)
    if not version:
        raise DockerfileError(f"base {build.image}: a python:X.Y-slim image is expected")

    workdir, copies = "/", []
    wheel: tuple[str, ...] = ()
    for ins in build.instructions:
        if ins.keyword == "WORKDIR":
            workdir = ins.args
        elif ins.keyword == "COPY":
            words = ins.args.split()
            dest = words[-1].rstrip("/").removeprefix("./")
            if (any(w.startswith("--") for w in words) or len(words) < 2
                    or dest not in ("", ".", *([words[0]] if len(words) == 2 else []))):
                raise DockerfileError(f"build stage: COPY {ins.args} (sources must keep their "
                                      "names in the context)")
            copies += words[:-1]
        elif ins.keyword == "RUN":
            if wheel:
                raise DockerfileError("build stage: more than one RUN")
            wheel = tuple(shlex.split(ins.args))
            if wheel[:2] != ("pip", "wheel") or wheel[-1] != ".":
                raise DockerfileError(f"build stage: RUN {ins.args} is not `pip wheel ... .`")
        else:
            raise DockerfileError(f"build stage: {ins.keyword} is not reproduced")
    wheel_dir = _option(wheel, "--wheel-dir")

    setup: list[str] = []
    install = user = ""
    env: list[tuple[str, str]] = []
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    wheels_copied = False
    for ins in final.instructions:
        if ins.keyword == "COPY":
            if ins.args.split() != [f"--from={build.name}", wheel_dir, wheel_dir]:
                raise DockerfileError(f"final stage: COPY {ins.args}")
            wheels_copied = True
        elif ins.keyword == "RUN" and not wheels_copied:
            setup.append(ins.args)
        elif ins.keyword == "RUN":
            if install or not ins.args.startswith("pip install "):
                raise DockerfileError(f"final stage: RUN {ins.args} after the wheels")
            install = ins.args
        elif ins.keyword == "USER":
            user = ins.args
        elif ins.keyword == "ENV":
            env += _env(ins.args)
        elif ins.keyword == "ENTRYPOINT":
            entrypoint = _exec_form(ins)
        elif ins.keyword == "CMD":
            cmd = _exec_form(ins)
        else:
            raise DockerfileError(f"final stage: {ins.keyword} is not reproduced")
    if not install:
        raise DockerfileError("final stage: no `pip install` of the wheels")
    return DockerfileSpec(build.image, version.group(1), workdir, tuple(copies), wheel,
                          wheel_dir, tuple(setup), install, user, tuple(env), entrypoint, cmd)


def load(path: Path = DOCKERFILE) -> DockerfileSpec:
    """The spec of the repository's Dockerfile (or ``path``)."""
    return parse(path.read_text())
