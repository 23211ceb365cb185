"""The image's root file systems, built on this machine (root, overlayfs, chroot; no Docker).

The base stands in for the Dockerfile's ``python:X.Y-slim``: ``debootstrap --variant=minbase``
of Debian bookworm (the release whose python3 is 3.11) with ``pythonX.Y``, ``python3`` and
``python3-pip``, slimmed as Debian's slim images are (no apt lists or package cache, no
documentation except copyrights, no man pages or translations, empty logs) and without
Debian's ``EXTERNALLY-MANAGED`` marker, which python:3.11-slim does not have either, so the
Dockerfile's ``pip install`` runs unchanged. The Dockerfile's setup ``RUN`` lines (``useradd``)
then run in it through chroot. Later steps run in an overlayfs over it, so that each step's
upper directory is exactly its image layer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from qbackbone.dev.realnode_host import mounts_under, unmount_all

DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, as in the Dockerfile's base
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The environment python:3.11-slim sets (besides version variables); the Dockerfile's ENV adds
# to it.
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8")
# Directories packed empty: the runtime mounts them.
RUNTIME_DIRS = ("dev", "proc", "sys")
# What Debian's slim images (and so python:3.11-slim) leave out: dpkg excludes these paths from
# later installs too.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""


class ImageBuildError(RuntimeError):
    """A step of the image build failed (the message names it and the log)."""


def remove_tree(path: Path) -> None:
    """Remove a build directory; first unmount anything below it (an interrupted debootstrap
    leaves /proc and /sys, possibly a bind of /dev, mounted in its target), and refuse if
    something stays mounted."""
    if not os.path.lexists(path):
        return
    failed = unmount_all(path)
    if failed or mounts_under(path):
        raise ImageBuildError(f"not removing {path}: still mounted below it: {failed}")
    shutil.rmtree(path)


def packages(python_version: str) -> tuple[str, ...]:
    """The Debian packages of the base for Python ``X.Y``."""
    return (f"python{python_version}", "python3", "python3-pip")


def debian_mirror(sources: Sequence[Path] = (Path("/etc/apt/sources.list"),
                                             Path("/etc/apt/sources.list.d"))) -> str:
    """``$QB_DEBIAN_MIRROR``, else the first Debian archive this host's apt uses, else
    deb.debian.org."""
    if os.environ.get("QB_DEBIAN_MIRROR"):
        return os.environ["QB_DEBIAN_MIRROR"]
    files: list[Path] = []
    for source in sources:
        files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list")) \
            if source.is_dir() else [source]
    for file in files:
        with contextlib.suppress(OSError):
            for url in re.findall(r"^(?:URIs:|deb)\s+(\S+)", file.read_text(), flags=re.M):
                if re.search(r"/debian/?$", url):
                    return str(url.rstrip("/"))
    return DEFAULT_MIRROR


def run_logged(argv: Sequence[str], log: Path, what: str,
               env: Mapping[str, str] | None = None, timeout: float = 1800) -> None:
    """Run ``argv`` with its output appended to ``log``; raise with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env,
                              timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise ImageBuildError(f"{what} failed ({done.returncode}); log {log}:\n{tail}")


def chroot_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for commands in the chroot: the base's, plus ``extra``."""
    env = dict(e.split("=", 1) for e in BASE_ENV)
    env["HOME"] = "/root"
    env.update(extra or {})
    return env


def chroot_sh(root: Path, command: str, log: Path, what: str,
              env: Mapping[str, str] | None = None) -> None:
    """``/bin/sh -c command`` in the file system ``root`` (as a Dockerfile RUN does)."""
    run_logged(["chroot", str(root), "/bin/sh", "-c", command], log, what,
               env=chroot_env(env))


def chroot_output(root: Path, argv: Sequence[str]) -> str:
    """The stdout of ``argv`` run in ``root``."""
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True,
                          env=chroot_env(), check=True, timeout=120).stdout


def _remove_under(root: Path, pattern: str, keep: str | None = None) -> None:
    for path in list(root.glob(pattern)):
        if (keep and path.match(keep)) or not os.path.lexists(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def slim(root: Path) -> None:
    """Remove what a slim Debian image does not carry (see ``DPKG_EXCLUDES``)."""
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                    "var/cache/debconf/*-old", "usr/share/man/*", "usr/share/groff/*",
                    "usr/share/info/*", "usr/share/lintian/*", "usr/share/linda/*",
                    "usr/share/locale/*", "tmp/*", "etc/hostname", "etc/resolv.conf"):
        _remove_under(root, pattern)
    for doc in (root / "usr/share/doc").glob("*"):
        if doc.is_dir() and not doc.is_symlink():
            _remove_under(doc, "*", keep="copyright")
    for log in (root / "var/log").rglob("*"):
        if log.is_file():
            log.write_bytes(b"")
    (root / "var/log/bootstrap.log").unlink(missing_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/slim-image").write_text(DPKG_EXCLUDES)


def build_base(dest: Path, python_version: str, setup_commands: Sequence[str], log: Path,
               mirror: str | None = None) -> dict[str, str]:
    """debootstrap the base into ``dest`` (which must not exist), slim it and run the
    Dockerfile's setup commands in it; return what it holds (Python and pip versions)."""
    mirror = mirror or debian_mirror()
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is missing: apt-get install debootstrap "
                              "(hack/build-image.sh does)")
    include = ",".join(packages(python_version))
    run_logged(["debootstrap", "--variant=minbase", f"--include={include}", DEBIAN_SUITE,
                str(dest), mirror], log, f"debootstrap {DEBIAN_SUITE} from {mirror}")
    python = chroot_output(dest, ["python3", "--version"]).split()[-1]
    if not python.startswith(python_version + "."):
        raise ImageBuildError(f"{DEBIAN_SUITE}'s python3 is {python}, the Dockerfile's base "
                              f"has {python_version}")
    for marker in (dest / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    slim(dest)
    for command in setup_commands:
        chroot_sh(dest, command, log, f"RUN {command}")
    pip = chroot_output(dest, ["python3", "-m", "pip", "--version"]).split()[1]
    return {"python": python, "pip": pip, "suite": DEBIAN_SUITE, "mirror": mirror}


@contextlib.contextmanager
def overlay(lowers: Sequence[Path], upper: Path, scratch: Path) -> Iterator[Path]:
    """Mount an overlayfs of ``lowers`` (top first) with ``upper`` for the changes; yield the
    mount point (under ``scratch``); unmount on the way out."""
    work, merged = scratch / "work", scratch / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work}"
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageBuildError(f"overlay mount failed (needs root and overlayfs): "
                              f"{done.stderr.strip()}")
    try:
        yield merged
    finally:
        if subprocess.run(["umount", str(merged)], capture_output=True, check=False).returncode:
            unmount_all(merged)
        remove_tree(work)
