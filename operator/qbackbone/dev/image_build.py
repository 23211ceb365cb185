"""The steps of ``qbackbone dev image`` (see ``image.py``): keys, cached layers, the archive.

``plan`` reads the Dockerfile and pyproject and computes the three keys; ``build`` reuses the
archive of an unchanged tree or builds what is missing (base, dependencies, project) under
``<cache>/image`` while holding a lock there.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from qbackbone.dev import image_oci, image_rootfs, image_spec
from qbackbone.dev.binaries import cache_root
from qbackbone.dev.image_oci import Layer
from qbackbone.dev.image_rootfs import ImageBuildError, remove_tree

BUILD_VERSION = 1  # bump when a step changes what it makes without its inputs changing
ARCHIVE = "qbackbone.oci.tar"
KEEP = 2  # cache entries of each kind kept (the newest)
HERE = Path(__file__).resolve().parent
SOURCES = {name: HERE / f"{name}.py" for name in ("image", "image_build", "image_spec",
                                                  "image_rootfs", "image_oci", "images")}
CONTEXT_IGNORED = ("__pycache__", ".pyc", ".egg-info", ".mypy_cache", ".pytest_cache",
                   ".so")  # a compiled engine built in place: the wheel builds its own
#: Build trees inside the context (cargo's, for the compiled scheduler engine), as .dockerignore.
CONTEXT_IGNORED_DIRS = ("operator/native/target/",)


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"image: {message}", file=sys.stderr, flush=True)


def normalise(reference: str) -> str:
    """The full name containerd and the kubelet use for ``reference``
    (``qbackbone:0.1.0`` -> ``docker.io/library/qbackbone:0.1.0``)."""
    first, sep, _ = reference.partition("/")
    if not sep:
        return f"docker.io/library/{reference}"
    if "." in first or ":" in first or first == "localhost":
        return reference
    return f"docker.io/{reference}"


def chart_image_names(repo: Path) -> list[str]:
    """The chart's default image (repository and tag, else appVersion) and ``<repo>:dev``."""
    chart = repo / "charts" / "qbackbone"
    values = yaml.safe_load((chart / "values.yaml").read_text())["image"]
    tag = values.get("tag") or str(yaml.safe_load((chart / "Chart.yaml").read_text())
                                   ["appVersion"])
    return [normalise(f"{values['repository']}:{tag}"), normalise(f"{values['repository']}:dev")]


def context_files(repo: Path, copies: Sequence[str]) -> list[tuple[str, Path]]:
    """(relative name, path) of the files the build stage's COPY lines take, sorted; caches
    and build leftovers left out."""
    files = []
    for source in copies:
        path = repo / source
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in candidates:
            rel = file.relative_to(repo).as_posix()
            if (file.is_file() and not rel.startswith(CONTEXT_IGNORED_DIRS)
                    and not any(part.endswith(CONTEXT_IGNORED) for part in rel.split("/"))):
                files.append((rel, file))
    return files


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def files_hash(files: Sequence[tuple[str, Path]]) -> str:
    """A hash of names, executable bits and contents."""
    h = hashlib.sha256()
    for rel, path in files:
        h.update(f"{rel}\0{os.access(path, os.X_OK):d}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a build makes and the keys that name its cached parts."""

    repo: Path
    spec: image_spec.DockerfileSpec
    names: tuple[str, ...]
    base_key: str
    deps_key: str
    app_key: str
    project: str

    @property
    def env(self) -> list[str]:
        """The image's environment: the base's, then the Dockerfile's ENV."""
        own = [f"{k}={v}" for k, v in self.spec.env]
        keys = {e.split("=", 1)[0] for e in own}
        return [e for e in image_rootfs.BASE_ENV if e.split("=", 1)[0] not in keys] + own

    def config(self, layers: Sequence[Layer]) -> dict[str, Any]:
        """The image config the archive carries."""
        return image_oci.image_config(layers, user=self.spec.user, env=self.env,
                                      entrypoint=self.spec.entrypoint, cmd=self.spec.cmd)


def plan(repo: Path = image_spec.REPO, names: Sequence[str] = (), level: int = 6) -> Plan:
    """Read the Dockerfile and pyproject and compute the keys (this is all a cached run does)."""
    spec = image_spec.load(repo / "Dockerfile")
    source = {n: p.read_bytes().decode() for n, p in SOURCES.items()}
    script = repo / "hack" / "build-image.sh"
    base_key = _digest(BUILD_VERSION, image_rootfs.DEBIAN_SUITE,
                       image_rootfs.packages(spec.python_version), spec.setup_commands,
                       source["image_rootfs"], source["image_oci"], level)[:16]
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    deps_key = _digest(base_key, project.get("dependencies", []), project.get("requires-python"),
                       spec.wheel_command, spec.install_command, spec.wheel_dir)[:16]
    names = tuple(names) or tuple(chart_image_names(repo))
    app_key = _digest(deps_key, files_hash(context_files(repo, spec.build_copies)),
                      (repo / "Dockerfile").read_text(), names, source,
                      script.read_text() if script.is_file() else "")[:16]
    return Plan(repo, spec, names, base_key, deps_key, app_key, str(project["name"]))


class _Timer:
    """Seconds per step, in order."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        log(what)
        t0 = time.monotonic()
        yield
        self.steps[name] = round(time.monotonic() - t0, 2)


def _fresh(path: Path) -> Path:
    remove_tree(path)
    path.mkdir(parents=True)
    return path


def _commit(tmp: Path, final: Path, layer: Layer, description: str = "layer.json") -> Layer:
    """Move a finished cache entry into place; the layer's path moves with it."""
    remove_tree(final)
    tmp.rename(final)
    layer = dataclasses.replace(layer, path=str(final / Path(layer.path).name))
    layer.save(final / description)
    return layer


class Builder:
    """Runs the steps of one build in ``<cache>/image``."""

    def __init__(self, plan: Plan, cache: Path, level: int = 6) -> None:
        self.plan, self.spec, self.level = plan, plan.spec, level
        self.root = cache / "image"
        self.logs = self.root / "logs"
        self.timer = _Timer()
        self.base_info: dict[str, str] = {}

    def _wheel(self, src: Path, out: Path, log_file: Path, no_deps: bool) -> None:
        """The build stage's ``pip wheel`` with this Python (the base's X.Y)."""
        argv = [sys.executable, "-m", *self.spec.wheel_command[:-1], str(src)]
        argv[argv.index(self.spec.wheel_dir)] = str(out)
        if no_deps:
            argv.insert(argv.index("wheel") + 1, "--no-deps")
        image_rootfs.run_logged(argv, log_file, "pip wheel")

    def _install(self, merged: Path, wheels: Sequence[Path], log_file: Path) -> None:
        """The final stage's install command, verbatim, in the chroot (no index: every wheel
        it needs is there or installed already)."""
        target = merged / self.spec.wheel_dir.lstrip("/")
        target.mkdir(parents=True)
        for wheel in wheels:
            shutil.copy2(wheel, target / wheel.name)
        image_rootfs.chroot_sh(merged, self.spec.install_command, log_file,
                               f"RUN {self.spec.install_command}",
                               env={"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

    def base(self) -> tuple[Path, Layer]:
        final = self.root / f"base-{self.plan.base_key}"
        if (final / "layer.json").is_file():
            self.base_info = json.loads((final / "base.json").read_text())
            return final / "rootfs", Layer.load(final / "layer.json")
        tmp = _fresh(self.root / f"{final.name}.tmp-{os.getpid()}")
        log_file = self.logs / f"{final.name}.log"
        log_file.unlink(missing_ok=True)
        with self.timer.step("base", f"base: debootstrap {image_rootfs.DEBIAN_SUITE} with "
                             f"python{self.spec.python_version} (log {log_file})"):
            self.base_info = image_rootfs.build_base(
                tmp / "rootfs", self.spec.python_version, self.spec.setup_commands, log_file)
        (tmp / "base.json").write_text(json.dumps(self.base_info, indent=2) + "\n")
        with self.timer.step("base_layer", "base: packing the layer"):
            created = (f"debootstrap --variant=minbase {image_rootfs.DEBIAN_SUITE} "
                       f"{' '.join(image_rootfs.packages(self.spec.python_version))}; "
                       + "; ".join(self.spec.setup_commands))
            layer = image_oci.write_layer(tmp / "rootfs", tmp / "layer.tar.gz", created,
                                          skip_contents=image_rootfs.RUNTIME_DIRS,
                                          level=self.level)
        return final / "rootfs", _commit(tmp, final, layer)

    def deps(self, rootfs: Path) -> tuple[Path, Layer]:
        final = self.root / f"deps-{self.plan.deps_key}"
        if (final / "layer.json").is_file():
            return final / "upper", Layer.load(final / "layer.json")
        tmp = _fresh(self.root / f"{final.name}.tmp-{os.getpid()}")
        log_file = self.logs / f"{final.name}.log"
        log_file.unlink(missing_ok=True)
        with self.timer.step("deps_wheels", f"deps: pip wheel (log {log_file})"):
            self._wheel(self._context(tmp / "src"), tmp / "wheels", log_file, no_deps=False)
            wheels = [w for w in sorted((tmp / "wheels").glob("*.whl"))
                      if not w.name.startswith(f"{self.plan.project}-")]
        with self.timer.step("deps_install", f"deps: pip install of {len(wheels)} wheels"), \
                image_rootfs.overlay([rootfs], tmp / "upper", tmp / "scratch") as merged:
            self._install(merged, wheels, log_file)
        with self.timer.step("deps_layer", "deps: packing the layer"):
            layer = image_oci.write_layer(tmp / "upper", tmp / "layer.tar.gz",
                                          f"{self.spec.install_command} # dependencies",
                                          whiteouts=True, level=self.level)
        shutil.rmtree(tmp / "wheels")
        shutil.rmtree(tmp / "src")
        return final / "upper", _commit(tmp, final, layer)

    def _context(self, dest: Path) -> Path:
        """A copy of the build context (the build stage's COPY sources)."""
        for rel, path in context_files(self.plan.repo, self.spec.build_copies):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
        return dest

    def app(self, rootfs: Path, deps_upper: Path, layers: Sequence[Layer]) -> dict[str, Any]:
        final = self.root / f"app-{self.plan.app_key}"
        tmp = _fresh(self.root / f"{final.name}.tmp-{os.getpid()}")
        log_file = self.logs / f"{final.name}.log"
        log_file.unlink(missing_ok=True)
        with self.timer.step("app_wheel", f"app: pip wheel --no-deps (log {log_file})"):
            self._wheel(self._context(tmp / "src"), tmp / "wheels", log_file, no_deps=True)
        with image_rootfs.overlay([deps_upper, rootfs], tmp / "upper", tmp / "scratch") as merged:
            with self.timer.step("app_install", "app: pip install of the project's wheel"):
                self._install(merged, sorted((tmp / "wheels").glob("*.whl")), log_file)
            with self.timer.step("app_layer", "app: packing the layer"):
                layer = image_oci.write_layer(tmp / "upper", tmp / "layer.tar.gz",
                                              self.spec.install_command, whiteouts=True,
                                              level=self.level)
            with self.timer.step("app_check", "app: pip check; the entry point as USER"):
                version = self._check(merged, log_file)
        all_layers = [*layers, layer]
        with self.timer.step("archive", "writing the OCI archive"):
            digest = image_oci.write_image_archive(tmp / ARCHIVE, self.plan.names, all_layers,
                                                   self.plan.config(all_layers))
        for leftover in ("src", "wheels", "upper", "scratch"):
            remove_tree(tmp / leftover)
        (tmp / "layer.tar.gz").unlink()  # its blob is in the archive
        remove_tree(final)
        tmp.rename(final)
        record = {"names": list(self.plan.names), "archive": str(final / ARCHIVE),
                  "manifest_digest": digest, "version": version,
                  "keys": {"base": self.plan.base_key, "deps": self.plan.deps_key,
                           "app": self.plan.app_key},
                  "archive_bytes": (final / ARCHIVE).stat().st_size,
                  "unpacked_bytes": sum(la.unpacked for la in all_layers),
                  "layers": [{"step": step, "size": la.size, "unpacked": la.unpacked,
                              "digest": la.digest}
                             for step, la in zip(("base", "deps", "app"), all_layers,
                                                 strict=True)],
                  "base": self.base_info}
        (final / "image.json").write_text(json.dumps(record, indent=2) + "\n")
        return record

    def _check(self, merged: Path, log_file: Path) -> str:
        env = {"PYTHONDONTWRITEBYTECODE": "1"}
        image_rootfs.chroot_sh(merged, "python3 -m pip check", log_file, "pip check", env=env)
        user = self.spec.user_uid
        argv = ["chroot", f"--userspec={user}:{user}", str(merged), *self.spec.entrypoint,
                "--version"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300,
                              env=image_rootfs.chroot_env({**env, "HOME": "/tmp"}))
        if done.returncode != 0:
            raise ImageBuildError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def prune(self) -> None:
        """Keep the newest ``KEEP`` entries of each kind (the ones in use included)."""
        current = {f"base-{self.plan.base_key}", f"deps-{self.plan.deps_key}",
                   f"app-{self.plan.app_key}"}
        for name in current:
            if (self.root / name).exists():
                os.utime(self.root / name)
        for kind in ("base", "deps", "app"):
            entries = sorted((p for p in self.root.glob(f"{kind}-*") if p.is_dir()),
                             key=lambda p: p.stat().st_mtime, reverse=True)
            for old in [p for p in entries if p.name not in current][KEEP - 1:]:
                log(f"pruning {old}")
                remove_tree(old)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(plan: Plan, cache: Path | None = None, refresh: bool = False, level: int = 6,
          allow: Callable[[str], bool] = lambda _: True,
          started: float | None = None) -> dict[str, Any]:
    """Build (or reuse) the image of ``plan``; return its record with ``build`` (kind: cold,
    deps, app or cached; seconds since ``started``, default now; steps). ``allow(kind)`` may
    refuse a build of that kind (tests that want only cached or quick builds)."""
    t0 = time.monotonic() if started is None else started
    builder = Builder(plan, cache or cache_root(), level)
    root = builder.root
    with _locked(root):
        app = root / f"app-{plan.app_key}"
        if not refresh and (app / "image.json").is_file() and (app / ARCHIVE).is_file():
            record = json.loads((app / "image.json").read_text())
            os.utime(app)
            record["build"] = {"kind": "cached", "seconds": round(time.monotonic() - t0, 3)}
            return record
        for stale in root.glob("*.tmp-*"):  # what an interrupted build left
            remove_tree(stale)
        if refresh:
            for key in ("base", "deps"):
                remove_tree(root / f"{key}-{getattr(plan, key + '_key')}")
        kind = ("app" if (root / f"deps-{plan.deps_key}" / "layer.json").is_file() else
                "deps" if (root / f"base-{plan.base_key}" / "layer.json").is_file() else "cold")
        if not allow(kind):
            raise ImageBuildError(f"a {kind} build is needed and was not allowed")
        if os.geteuid() != 0:
            raise ImageBuildError("building the image needs root (debootstrap, chroot, "
                                  "overlay mounts); a cached image does not")
        if f"{sys.version_info.major}.{sys.version_info.minor}" != plan.spec.python_version:
            raise ImageBuildError(f"pip wheel must run on Python {plan.spec.python_version} "
                                  f"like the Dockerfile's build stage, not {sys.version}")
        rootfs, base_layer = builder.base()
        deps_upper, deps_layer = builder.deps(rootfs)
        record = builder.app(rootfs, deps_upper, [base_layer, deps_layer])
        builder.prune()
    record["build"] = {"kind": kind, "seconds": round(time.monotonic() - t0, 2),
                       "steps": builder.timer.steps}
    return record
