"""The Docker-less image build (``qbackbone dev image``) stays in step with the Dockerfile: the
build reads the Dockerfile (image_spec.py) and these tests check that what it reads is what it
runs and what the image carries: base Python, build context, pip commands, user, ENV,
ENTRYPOINT, CMD; and that the cache key follows the tree. No root or network needed; the
checks of a built archive run when one is cached for this tree."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from qbackbone.dev import image_build, image_oci, image_rootfs, image_spec
from qbackbone.dev.binaries import cache_root
from qbackbone.dev.image_build import ARCHIVE, Builder, plan
from qbackbone.dev.image_oci import Layer
from qbackbone.k8s.builders import WorkerConfig

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SPEC = image_spec.load(DOCKERFILE)


def dockerfile_lines(keyword: str, stage: int) -> list[str]:
    """Raw argument text of ``keyword`` lines in stage ``stage`` (0: build, 1: final), read
    with plain regular expressions, independently of image_spec's parser."""
    text = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[stage + 1]
    return re.findall(rf"^{keyword}\s+(.+)$", text, flags=re.M)


def test_every_dockerfile_instruction_is_one_the_build_reproduces() -> None:
    keywords = {ins.keyword for ins in image_spec.instructions(DOCKERFILE.read_text())}
    assert keywords <= image_spec.KNOWN
    with pytest.raises(image_spec.DockerfileError, match="EXPOSE"):
        image_spec.parse(DOCKERFILE.read_text() + "\nEXPOSE 8080\n")
    with pytest.raises(image_spec.DockerfileError, match="RUN"):
        image_spec.parse(DOCKERFILE.read_text() + "\nRUN apt-get install -y curl\n")


def test_base_python_is_the_dockerfiles() -> None:
    (base,) = {f.split()[0] for f in re.findall(r"^FROM\s+(.+)$", DOCKERFILE.read_text(),
                                                   flags=re.M)}
    version = re.fullmatch(r"python:(\d+\.\d+)-slim", base)
    assert version, base
    assert SPEC.python_version == version.group(1)
    assert image_rootfs.packages(SPEC.python_version)[0] == f"python{version.group(1)}"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={version.group(1)}" in requires
    assert image_rootfs.DEBIAN_SUITE == "bookworm"  # python3 is 3.11 there: checked at build


def test_build_context_is_what_the_build_stage_copies() -> None:
    copies = [w for line in dockerfile_lines("COPY", 0) for w in line.split()[:-1]]
    assert list(SPEC.build_copies) == copies
    files = {rel for rel, _ in image_build.context_files(REPO, SPEC.build_copies)}
    assert {"pyproject.toml", "README.md", "operator/qbackbone/cli/main.py",
            "controllers/main.py"} <= files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_pip_commands_are_the_dockerfiles(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """The builder runs the build stage's ``pip wheel`` (this Python, paths substituted) and
    the final stage's install command verbatim."""
    (wheel_run,) = dockerfile_lines("RUN", 0)
    install_runs = [r for r in dockerfile_lines("RUN", 1) if "pip install" in r]
    assert install_runs == [SPEC.install_command]
    assert "--no-cache-dir" in shlex.split(SPEC.install_command)

    ran: list[Any] = []
    monkeypatch.setattr(image_rootfs, "run_logged", lambda argv, *a, **k: ran.append(argv))
    monkeypatch.setattr(image_rootfs, "chroot_sh",
                        lambda root, command, *a, **k: ran.append((root, command, k["env"])))
    builder = Builder(plan(REPO), tmp_path)
    builder._wheel(tmp_path / "src", tmp_path / "out", tmp_path / "log", no_deps=False)
    builder._wheel(tmp_path / "src", tmp_path / "out", tmp_path / "log", no_deps=True)
    out, src = str(tmp_path / "out"), str(tmp_path / "src")
    *options, context = shlex.split(wheel_run)
    assert context == "."
    full, no_deps = ran[0][2:], ran[1][2:]  # after `python -m`
    assert full == [out if w == SPEC.wheel_dir else w for w in options] + [src]
    assert no_deps == ["pip", "wheel", "--no-deps", *full[2:]]

    (tmp_path / "w.whl").write_bytes(b"")
    builder._install(tmp_path / "merged", [tmp_path / "w.whl"], tmp_path / "log")
    root, command, env = ran[2]
    assert command == SPEC.install_command
    assert (root / SPEC.wheel_dir.lstrip("/") / "w.whl").is_file()
    assert env["PIP_NO_INDEX"] == "1"  # every wheel is there: nothing is fetched


def test_the_setup_step_creates_the_user_the_image_runs_as() -> None:
    (useradd,) = dockerfile_lines("RUN", 1)[:1]
    words = shlex.split(useradd)
    assert words[0] == "useradd" and "--create-home" in words
    uid = words[words.index("--uid") + 1]
    assert SPEC.setup_commands == (useradd,)
    (user,) = dockerfile_lines("USER", 1)
    assert user == uid == str(SPEC.user_uid)
    chart = (REPO / "charts/qbackbone/templates/deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in chart


def _config() -> dict[str, Any]:
    layer = Layer("x", "sha256:1", "sha256:2", 1, 1, "test")
    return plan(REPO).config([layer])


def test_image_config_is_the_dockerfiles() -> None:
    config = _config()["config"]
    (entrypoint,) = dockerfile_lines("ENTRYPOINT", 1)
    (cmd,) = dockerfile_lines("CMD", 1)
    assert config["Entrypoint"] == yaml.safe_load(entrypoint)
    assert config["Cmd"] == yaml.safe_load(cmd)
    assert config["User"] == dockerfile_lines("USER", 1)[0]
    env = dict(e.split("=", 1) for e in config["Env"])
    for line in dockerfile_lines("ENV", 1):
        for pair in shlex.split(line):
            key, value = pair.split("=", 1)
            assert env[key] == value
    assert env["PATH"].split(":")[0] == "/usr/local/sbin"  # where pip puts the entry point
    assert config["WorkingDir"] == "/"  # the final stage has no WORKDIR
    assert not dockerfile_lines("WORKDIR", 1)


def test_image_names_are_the_charts_and_the_operators() -> None:
    names = plan(REPO).names
    values = yaml.safe_load((REPO / "charts/qbackbone/values.yaml").read_text())["image"]
    app_version = yaml.safe_load((REPO / "charts/qbackbone/Chart.yaml").read_text())["appVersion"]
    assert names[0] == f"docker.io/library/{values['repository']}:{values['tag'] or app_version}"
    assert image_build.normalise(WorkerConfig().image) in names
    assert image_build.normalise("localhost/x/y:1") == "localhost/x/y:1"
    assert image_build.normalise("ghcr.io/a/b:1") == "ghcr.io/a/b:1"
    assert image_build.normalise("a/b:1") == "docker.io/a/b:1"


def _tree(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for rel in (*SPEC.build_copies, "Dockerfile", "charts/qbackbone/values.yaml",
                "charts/qbackbone/Chart.yaml"):
        src, dest = REPO / rel, repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest)
    return repo


def test_cache_keys_follow_the_content(tmp_path: Path) -> None:
    repo = _tree(tmp_path)
    first = plan(repo)
    assert plan(repo) == first  # an unchanged tree: same keys, the cached archive is used
    (repo / "operator/qbackbone/__pycache__").mkdir(exist_ok=True)
    (repo / "operator/qbackbone/__pycache__/x.pyc").write_bytes(b"ignored")
    assert plan(repo).app_key == first.app_key
    main = repo / "operator/qbackbone/cli/main.py"
    main.write_text(main.read_text() + "\n# changed\n")
    changed = plan(repo)
    assert changed.app_key != first.app_key
    assert (changed.base_key, changed.deps_key) == (first.base_key, first.deps_key)
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6",', '"pyyaml>=6.0.1",'))
    assert plan(repo).deps_key != first.deps_key
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("--uid 10001", "--uid 10002")
                          .replace("USER 10001", "USER 10002"))
    assert plan(repo).base_key != first.base_key


def test_layers_and_archive_round_trip(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "usr/local/bin").mkdir(parents=True)
    (tree / "usr/local/bin/tool").write_text("#!/bin/sh\n")
    (tree / "usr/local/bin/tool").chmod(0o755)
    os.link(tree / "usr/local/bin/tool", tree / "usr/local/bin/tool2")
    (tree / "dev").mkdir()
    (tree / "dev/junk").write_text("not packed")
    if os.geteuid() == 0:  # an overlayfs whiteout is a 0/0 character device
        os.mknod(tree / "usr/gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    one = image_oci.write_layer(tree, tmp_path / "a.tar.gz", "t", whiteouts=True,
                                skip_contents=["dev"])
    two = image_oci.write_layer(tree, tmp_path / "b.tar.gz", "t", whiteouts=True,
                                skip_contents=["dev"])
    assert (one.digest, one.diff_id) == (two.digest, two.diff_id)  # byte-stable

    with tarfile.open(one.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "dev" in members and "dev/junk" not in members
    assert members["usr/local/bin/tool"].mode == 0o755
    assert members["usr/local/bin/tool2"].islnk()
    if os.geteuid() == 0:
        assert "usr/.wh.gone" in members and "usr/gone" not in members

    config = plan(REPO).config([one])
    names = ["docker.io/library/qbackbone:t", "docker.io/library/qbackbone:u"]
    digest = image_oci.write_image_archive(tmp_path / ARCHIVE, names, [one], config)
    read_names, manifest, read_config = image_oci.read_archive(tmp_path / ARCHIVE)
    assert read_names == names and read_config == config
    assert manifest["layers"][0]["digest"] == one.digest
    assert digest.startswith("sha256:")


def test_a_built_archive_of_this_tree_carries_the_dockerfiles_config() -> None:
    p = plan(REPO)
    archive = cache_root() / "image" / f"app-{p.app_key}" / ARCHIVE
    if not archive.is_file():
        pytest.skip(f"no image built for this tree ({archive}): hack/build-image.sh")
    names, manifest, config = image_oci.read_archive(archive)
    assert tuple(names) == p.names
    assert config["config"] == _config()["config"]
    assert len(manifest["layers"]) == 3  # base, dependencies, project
