"""``qbackbone dev image``: the image the Dockerfile describes, built without Docker.

Three layers, each cached by the content it comes from, under
``${QB_CACHE_DIR:-~/.cache/qbackbone}/image``:

``base-<key>``  the Python base (``image_rootfs.py``: debootstrap of Debian bookworm with
                python3.11 and pip, slimmed) plus the Dockerfile's setup RUN (``useradd``);
``deps-<key>``  the dependencies: the build stage's ``pip wheel`` (run by this Python 3.11),
                the project's own wheel set aside, then the final stage's ``pip install``
                command, verbatim, in a chroot over the base (overlayfs: the upper directory
                is the layer); keyed by the base and pyproject's dependencies;
``app-<key>``   the project's wheel (the same ``pip wheel`` with ``--no-deps`` on a copy of
                the Dockerfile's build context) installed by the same command; then
                ``pip check`` and the entry point as the image's user; the OCI archive.

The app key hashes the build context (pyproject.toml, README.md, operator/, controllers/), the
Dockerfile, the image names and the builder's sources, so an unchanged tree only hashes and
reuses the archive. The image config takes USER, ENV, ENTRYPOINT and CMD from the Dockerfile
(``image_spec.py``); the names are the chart's default image, ``docker.io/library/qbackbone:
<appVersion>`` (what ``qbackbone:0.1.0`` means to the kubelet), and ``...qbackbone:dev``. When a
real node of the dev cluster runs, the archive is imported into its containerd. Building needs
root (debootstrap, chroot, overlay mounts); a cached image does not. Steps and keys:
``image_build.py``; layers and archive: ``image_oci.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qbackbone.dev import image_spec
from qbackbone.dev.image_build import ARCHIVE, Plan, build, log, plan
from qbackbone.dev.image_rootfs import ImageBuildError

__all__ = ["ARCHIVE", "Plan", "build", "image_main", "main", "plan", "register_image"]


def running_node(state_dir: Path) -> Path | None:
    """The real node dir under ``state_dir`` when its containerd is up."""
    from qbackbone.dev.realnode_host import NodeLayout

    layout = NodeLayout(state_dir / "real-node")
    try:
        running = json.loads(layout.status.read_text()).get("phase") == "running"
    except (OSError, ValueError):
        return None
    return layout.root if running and layout.containerd_socket.is_socket() else None


def import_into(node_dir: Path, archive: Path, timeout: float = 900) -> float:
    """``ctr -n k8s.io images import`` into the node's containerd; return the seconds."""
    from qbackbone.dev.realnode import RealNodeError, import_image

    t0 = time.monotonic()
    try:
        import_image(node_dir, archive, timeout=timeout)
    except RealNodeError as exc:
        raise ImageBuildError(str(exc)[-2000:]) from exc
    return round(time.monotonic() - t0, 2)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def summary(record: dict[str, Any]) -> str:
    """The human report (stdout); the archive path is its last line."""
    built = record["build"]
    steps = ", ".join(f"{k} {v}s" for k, v in built.get("steps", {}).items())
    layers = ", ".join(f"{la['step']} {_mib(la['size'])} ({_mib(la['unpacked'])})"
                       for la in record["layers"])
    lines = [f"image {' '.join(record['names'])} ({record['version']}, "
             f"python {record['base'].get('python')})",
             f"{built['kind']} build: {built['seconds']} s" + (f" ({steps})" if steps else ""),
             f"archive {_mib(record['archive_bytes'])}, unpacked {_mib(record['unpacked_bytes'])}"
             f"; layers gzip (tar): {layers}"]
    if record.get("imported"):
        imp = record["imported"]
        lines.append(f"imported into {imp['node']} in {imp['seconds']} s")
    return "\n".join([*lines, record["archive"]])


NOTES = {
    "cold": "nothing cached: debootstrap from the Debian mirror, pip wheel of every dependency "
            "from PyPI (no pip cache), installs, gzip of the layers",
    "deps": "the base cached; pyproject's dependencies changed",
    "app": "base and dependencies cached; the tree changed: the project's layer and the archive",
    "cached": "an unchanged tree: reading the Dockerfile and hashing the build context only",
    "import": "ctr -n k8s.io images import --local into the real node's containerd (unpacked)",
    "unpacked_bytes": "the uncompressed layer tars; archive_bytes: the OCI archive (gzip layers)",
}


def save_figures(path: Path, record: dict[str, Any]) -> None:
    """Merge this run into a benchmark file: the image's sizes, per kind of build (cold,
    deps, app, cached) its seconds and steps, and the last import."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["machine"] = {"cpus": os.cpu_count(), "kernel": platform.release(),
                       "python": platform.python_version()}
    data["notes"] = NOTES
    data["image"] = {k: record[k] for k in ("names", "version", "archive_bytes",
                                            "unpacked_bytes", "layers", "base", "keys")}
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data.setdefault("runs", {})[record["build"]["kind"]] = dict(record["build"], when=when)
    if record.get("imported"):
        data["import"] = {"seconds": record["imported"]["seconds"], "when": when}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``qbackbone dev image``."""
    parser.add_argument("--repo", type=Path, default=image_spec.REPO,
                        help="the source tree with the Dockerfile (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="default: $QB_CACHE_DIR or ~/.cache/qbackbone (under image/)")
    parser.add_argument("--name", action="append", default=[],
                        help="image name(s) (default: the chart's repository:tag and :dev)")
    parser.add_argument("--refresh", action="store_true",
                        help="rebuild every layer (new Debian packages and dependencies)")
    parser.add_argument("--gzip-level", type=int, default=6, choices=range(1, 10))
    parser.add_argument("--import", dest="import_mode", choices=("auto", "yes", "no"),
                        default="auto", help="into the dev cluster's real node (auto: if it runs)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="the dev cluster's state dir (default: as `dev cluster`)")
    parser.add_argument("--record", type=Path, default=None, metavar="JSON",
                        help="merge the figures into this file, e.g. "
                             "benchmarks/results/image-build.json")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")


def image_main(args: argparse.Namespace) -> int:
    """Build (or reuse), import when asked or a node runs, report."""
    try:
        started = time.monotonic()  # the hashing counts: it is all a cached run does
        record = build(plan(args.repo, args.name, args.gzip_level), args.cache_dir,
                       args.refresh, args.gzip_level, started=started)
        if args.import_mode != "no":
            from qbackbone.dev.cli import default_state_dir

            node = running_node(args.state_dir or default_state_dir())
            if node is None and args.import_mode == "yes":
                raise ImageBuildError("no real node runs (qbackbone dev cluster up, "
                                      "with a real node)")
            if node is not None:
                log(f"importing into the real node in {node}")
                record["imported"] = {"node": str(node),
                                      "seconds": import_into(node, Path(record["archive"]))}
    except (ImageBuildError, image_spec.DockerfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.record:
        save_figures(args.record, record)
    print(json.dumps(record, indent=2) if args.json else summary(record))
    return 0


def register_image(dev_subparsers: argparse._SubParsersAction) -> None:
    """Add ``image`` to the subcommands of ``qbackbone dev``."""
    parser = dev_subparsers.add_parser("image", help="build the image without Docker",
                                       description=__doc__,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=image_main)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m qbackbone.dev.image``."""
    parser = argparse.ArgumentParser(prog="python -m qbackbone.dev.image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return image_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
