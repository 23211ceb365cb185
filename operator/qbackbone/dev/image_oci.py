"""Multi-layer OCI image archives from directories, without Docker or a registry.

``write_layer`` packs a directory (a root file system, or an overlayfs upper directory whose
whiteouts become OCI ``.wh.`` entries) into a gzip layer in one pass, hashing the tar (the
diff id) and the compressed blob (the digest). ``write_image_archive`` puts layers and an image
config (User, Env, Entrypoint, Cmd) into an OCI layout tar that ``ctr images import`` takes,
with one index entry per image name (``io.containerd.image.name``), as ``images.py`` does for
its one-layer archives. Entries keep their owners, modes and whole-second mtimes (the
``.pyc`` files pip writes are checked against their sources' mtimes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from qbackbone.dev.images import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, go_arch

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True)
class Layer:
    """A gzip layer blob on disk and its hashes and sizes."""

    path: str
    digest: str      # sha256 of the compressed blob
    diff_id: str     # sha256 of the uncompressed tar
    size: int        # compressed bytes
    unpacked: int    # uncompressed tar bytes
    created_by: str

    def save(self, path: Path) -> None:
        """Write the description beside the blob (JSON)."""
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Layer:
        """Read a description written by ``save``."""
        return cls(**json.loads(path.read_text()))


class _HashingGzip:
    """A write-only file object: hashes what it gets, gzips it to ``out``, hashes that."""

    def __init__(self, out: BinaryIO, level: int) -> None:
        self.out = out
        self.raw, self.packed = hashlib.sha256(), hashlib.sha256()
        self.raw_size = self.packed_size = 0
        # wbits 31: a gzip member with mtime 0, so equal trees give equal bytes.
        self.zip = zlib.compressobj(level, zlib.DEFLATED, 31)

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.packed.update(data)
            self.packed_size += len(data)

    def write(self, data: bytes) -> int:
        self.raw.update(data)
        self.raw_size += len(data)
        self._emit(self.zip.compress(data))
        return len(data)

    def close(self) -> None:
        self._emit(self.zip.flush())


def _entries(root: Path, skip_contents: frozenset[str]) -> Iterator[tuple[str, Path]]:
    """Depth-first, each directory's entry right before its contents."""
    def visit(rel: str, path: Path) -> Iterator[tuple[str, Path]]:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            yield name, Path(entry.path)
            if entry.is_dir(follow_symlinks=False) and name not in skip_contents:
                yield from visit(name, Path(entry.path))

    yield from visit("", root)


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def write_layer(source: Path, output: Path, created_by: str, *, whiteouts: bool = False,
                skip_contents: Sequence[str] = (), level: int = 6) -> Layer:
    """Pack the tree ``source`` into the gzip layer ``output``.

    ``whiteouts``: ``source`` is an overlayfs upper directory: 0/0 character devices become
    ``.wh.<name>`` entries and opaque directories get ``.wh..wh..opq``. ``skip_contents``:
    directories (relative names) packed empty, e.g. ``dev``, ``proc``, ``sys``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    skip = frozenset(s.strip("/") for s in skip_contents)
    with tmp.open("wb") as out:
        sink = _HashingGzip(out, level)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for name, path in _entries(source, skip):
                st = path.lstat()
                if whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    parent, _, base = name.rpartition("/")
                    info = tarfile.TarInfo(f"{parent}/.wh.{base}" if parent else f".wh.{base}")
                    info.mode, info.mtime = 0o644, int(st.st_mtime)
                    tar.addfile(info)
                    continue
                info = tar.gettarinfo(str(path), arcname=name)
                if info is None:  # a socket: nothing an image can carry
                    continue
                info.mtime, info.uname, info.gname = int(st.st_mtime), "", ""
                if info.isreg():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
                if whiteouts and info.isdir() and _opaque(path):
                    opq = tarfile.TarInfo(f"{name}/.wh..wh..opq")
                    opq.mode, opq.mtime = 0o644, int(st.st_mtime)
                    tar.addfile(opq)
        sink.close()
    tmp.replace(output)
    return Layer(str(output), "sha256:" + sink.packed.hexdigest(),
                 "sha256:" + sink.raw.hexdigest(), sink.packed_size, sink.raw_size, created_by)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(data: bytes, media_type: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}


def image_config(layers: Sequence[Layer], *, user: str, env: Sequence[str],
                 entrypoint: Sequence[str], cmd: Sequence[str],
                 workdir: str = "/") -> dict[str, Any]:
    """The OCI image configuration of ``layers`` with the given runtime settings."""
    return {"architecture": go_arch(), "os": "linux",
            "config": {"User": user, "Env": list(env), "Entrypoint": list(entrypoint),
                       "Cmd": list(cmd), "WorkingDir": workdir},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created_by": layer.created_by} for layer in layers]}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_image_archive(output: Path, names: Sequence[str], layers: Sequence[Layer],
                        config: dict[str, Any]) -> str:
    """Write an OCI layout archive of ``layers`` and ``config`` named ``names`` (each an index
    entry, so ``ctr images import`` creates every name); return the manifest digest."""
    config_bytes = _json(config)
    config_desc = _descriptor(config_bytes, CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc,
                "layers": [{"mediaType": LAYER_GZIP, "digest": layer.digest, "size": layer.size}
                           for layer in layers]}
    manifest_bytes = _json(manifest)
    manifest_desc = _descriptor(manifest_bytes, MANIFEST)
    entries = []
    for name in names:
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
        entries.append({**manifest_desc, "platform": {"architecture": config["architecture"],
                                                      "os": config["os"]},
                        "annotations": {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: tag}})
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        _add_bytes(tar, "index.json", _json(index))
        blobs: dict[str, bytes | Path] = {manifest_desc["digest"]: manifest_bytes,
                                          config_desc["digest"]: config_bytes}
        blobs.update({layer.digest: Path(layer.path) for layer in layers})
        for digest in sorted(blobs):
            name = f"blobs/sha256/{digest.split(':', 1)[1]}"
            blob = blobs[digest]
            if isinstance(blob, bytes):
                _add_bytes(tar, name, blob)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = blob.stat().st_size, 0o644
                with blob.open("rb") as f:
                    tar.addfile(info, f)
    tmp.replace(output)
    return str(manifest_desc["digest"])


def read_archive(archive: Path) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """The names, manifest and config of an archive written by ``write_image_archive``."""
    with tarfile.open(archive) as tar:
        def blob(name: str) -> Any:
            member = tar.extractfile(name)
            if member is None:
                raise ValueError(f"{archive}: no {name}")
            return json.load(member)

        index = blob("index.json")
        names = [m["annotations"][ANNOTATION_IMAGE_NAME] for m in index["manifests"]]
        manifest = blob("blobs/sha256/" + index["manifests"][0]["digest"].split(":", 1)[1])
        config = blob("blobs/sha256/" + manifest["config"]["digest"].split(":", 1)[1])
    return names, manifest, config
