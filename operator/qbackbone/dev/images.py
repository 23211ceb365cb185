"""OCI image archives without a registry or Docker: a few files packed as a one-layer image
that ``ctr images import`` accepts (the real node imports its images this way).

Standard library only, so that ``hack/build-node.sh`` can run this file with any python3:
``python3 images.py --name NAME --file PATH_IN_IMAGE=HOST_FILE --entrypoint /bin --output X``.
The archive is byte-stable: same files, same name, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The annotation containerd's importer takes the image name from.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_INDEX = "application/vnd.oci.image.index.v1+json"
_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER = "application/vnd.oci.image.layer.v1.tar"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def go_arch(machine: str | None = None) -> str:
    """The OCI architecture of ``machine`` (default: this host's)."""
    machine = machine or platform.machine()
    return _ARCH.get(machine, machine)


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def layer_tar(files: Mapping[str, bytes | Path]) -> bytes:
    """An uncompressed layer holding ``files`` (path in the image -> content or host file);
    parent directories are added, host files keep their permission bits."""
    entries: dict[str, tuple[bytes | None, int]] = {}
    for path, content in files.items():
        rel = path.strip("/")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), (None, 0o755))
        if isinstance(content, Path):
            entries[rel] = (content.read_bytes(), content.stat().st_mode & 0o7777)
        else:
            entries[rel] = (content, 0o755)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            data, mode = entries[name]
            _add(tar, name, data, mode)
    return buf.getvalue()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def write_oci_archive(
    output: Path,
    name: str,
    files: Mapping[str, bytes | Path],
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin:/",),
) -> str:
    """Write a one-layer OCI image archive named ``name`` (e.g. ``localhost/x/y:1``) to
    ``output``; return the manifest digest (what ``ctr images ls`` shows)."""
    blobs: dict[str, bytes] = {}
    layer = layer_tar(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    arch = go_arch()
    image_config: dict[str, Any] = {"Env": list(env), "WorkingDir": "/"}
    if entrypoint:
        image_config["Entrypoint"] = list(entrypoint)
    if cmd:
        image_config["Cmd"] = list(cmd)
    config = {"architecture": arch, "os": "linux", "config": image_config,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created_by": "qbackbone.dev.images"}]}
    manifest = {"schemaVersion": 2, "mediaType": _MANIFEST,
                "config": _blob(blobs, _json(config), _CONFIG),
                "layers": [_blob(blobs, layer, _LAYER)]}
    manifest_desc = _blob(blobs, _json(manifest), _MANIFEST)
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    manifest_desc["annotations"] = {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: tag}
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": _INDEX, "manifests": [manifest_desc]}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}), 0o644)
        _add(tar, "index.json", _json(index), 0o644)
        _add(tar, "blobs", None, 0o755)
        _add(tar, "blobs/sha256", None, 0o755)
        for digest in sorted(blobs):
            _add(tar, f"blobs/sha256/{digest.split(':', 1)[1]}", blobs[digest], 0o644)
    tmp.replace(output)
    return str(manifest_desc["digest"])


def image_names(archive: Path) -> list[str]:
    """The image names an OCI archive's index carries (``io.containerd.image.name``)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ValueError(f"{archive}: no index.json")
        index = json.load(member)
    return [str(m["annotations"][ANNOTATION_IMAGE_NAME]) for m in index.get("manifests", [])
            if ANNOTATION_IMAGE_NAME in m.get("annotations", {})]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: pack host files into an OCI archive; print the manifest digest."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="image name, e.g. localhost/x/pause:1")
    parser.add_argument("--file", action="append", default=[], metavar="IMAGE_PATH=HOST_FILE")
    parser.add_argument("--entrypoint", action="append", default=[])
    parser.add_argument("--cmd", action="append", default=[])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    files: dict[str, bytes | Path] = {}
    for spec in args.file:
        image_path, sep, host = spec.partition("=")
        if not sep:
            parser.error(f"--file wants IMAGE_PATH=HOST_FILE, got {spec!r}")
        files[image_path] = Path(host)
    digest = write_oci_archive(args.output, args.name, files, args.entrypoint, args.cmd)
    print(f"{args.name} {digest} -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
