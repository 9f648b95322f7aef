"""Assemble the service image's root filesystem under DEST, in the Dockerfile's `rootfs` stage.

Usage: /opt/venv/bin/python -I tools/image/rootfs.py DEST

It imports what the service and its HEALTHCHECK import (IMPORTS, then gevent's patch_all and hub as a
worker does) and keeps, under DEST:
- the Python runtime: Debian's interpreter binary and, from its standard library, every top-level
  module or whole package the service imported (so a submodule imported later is there too), and the
  C extensions it loaded;
- the venv /opt/venv and /app (gunicorn's config);
- every shared library those ELF files need (ldd's closure), with the symlinks that lead to them;
- for scanners and SBOM tools: the dpkg status entries and file lists of the Debian packages owning
  any kept file, their copyright files, /etc/os-release and /etc/debian_version;
- a passwd and group with root and the app user (10001), and /tmp.
No shell, no package manager, no perl: nothing else is copied. The root filesystem is read-only at run
time, so what the service imports is byte-compiled here (unchecked-hash .pyc: mtimes do not matter).
"""
from __future__ import annotations

import compileall
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# The one standard-library package not kept whole: of its ~120 codecs (1.4 MB) the imported ones and
# these, which a request may name (a charset, an IDNA host name) or tools commonly use.
CODECS = tuple(f"encodings.{c}" for c in (
    "ascii", "latin_1", "utf_8", "utf_8_sig", "utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le",
    "utf_32_be", "idna", "punycode", "charmap", "cp437", "cp1252", "iso8859_15", "unicode_escape",
    "raw_unicode_escape", "base64_codec", "hex_codec"))
# Beyond service.app: gunicorn's gevent worker and logger (and the service's subclass of it, the keep-alive
# hand-off its config loads), the modules service/connection.py and
# service/page.py use, every Pillow plugin the service decodes with, what the HEALTHCHECK imports, and
# anything serving imports lazily: tools/image_check.sh runs every route with PYTHONVERBOSE and fails
# when a module is missing or compiled from source, which is the sign to add it here.
IMPORTS = (
    *CODECS, "urllib.request", "service.app", "service.connection", "service.worker", "service.handoff",
    "service.healthcheck", "gunicorn.app.wsgiapp", "gunicorn.glogging", "gunicorn.workers.ggevent",
    "importlib.readers", "importlib.resources._adapters", "importlib.resources.readers",
    "prometheus_client.multiprocess", "pyspng", "threadpoolctl",
    "PIL.BmpImagePlugin", "PIL.GifImagePlugin", "PIL.JpegImagePlugin", "PIL.MpoImagePlugin",
    "PIL.PngImagePlugin", "PIL.PpmImagePlugin", "PIL.TiffImagePlugin", "PIL.WebPImagePlugin",
    "gevent.monkey",
)
# Compiled but not imported here: importing service.wsgi loads a model.
COMPILE_ONLY = ("service.wsgi",)
KEEP_TREES = ("/opt/venv", "/app")
APP_UID = 10001
UNCHECKED = compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH
ELF_MAGIC = b"\x7fELF"


class Root:
    """DEST, filled path by path: each kept path appears at the same place, with its symlinks."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.kept: set[str] = set()  # absolute paths as seen in the build stage (files and links)

    def keep(self, path: str) -> None:
        path = os.path.normpath(path)
        if path in self.kept:
            return
        # A symlinked directory on the way (/lib64 -> usr/lib64): recreate it, go on through its target.
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            prefix = "/" + "/".join(parts[:i])
            if os.path.islink(prefix):
                self._link(prefix)
                self.keep(os.path.join(self._target(prefix), *parts[i:]))
                return
        self.kept.add(path)
        if os.path.islink(path):
            self._link(path)
            self.keep(self._target(path))
        elif os.path.isdir(path):
            (self.dest / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        else:
            out = self.dest / path.lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)

    def keep_tree(self, top: str) -> None:
        for d, dirs, files in os.walk(top):
            for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
                self.keep(os.path.join(d, name))
            self.keep(d)

    def _link(self, path: str) -> None:
        out = self.dest / path.lstrip("/")
        if not out.is_symlink():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.symlink_to(os.readlink(path))
        self.kept.add(path)

    @staticmethod
    def _target(link: str) -> str:
        return os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))


def import_service() -> list[str]:
    """Import what a worker imports; the source files of every loaded module, plus COMPILE_ONLY's."""
    for name in IMPORTS:
        importlib.import_module(name)
    import gevent
    import gevent.monkey
    gevent.monkey.patch_all()
    gevent.get_hub()
    files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
    return files + [importlib.util.find_spec(n).origin for n in COMPILE_ONLY]


def stdlib_paths(files: list[str]) -> set[str]:
    """The standard library's share: each loaded top-level module or its whole package; of encodings
    and lib-dynload, only what was loaded (CODECS are imported)."""
    stdlib = sysconfig.get_path("stdlib")
    keep = set()
    for f in files:
        if not f.startswith(stdlib + "/"):
            continue
        top = f[len(stdlib) + 1:].split("/")[0]
        keep.add(f if top in ("lib-dynload", "encodings") else os.path.join(stdlib, top))
    return keep


def compile_imported(files: list[str]) -> None:
    for f in files:
        if f.endswith(".py") and (f.startswith(sysconfig.get_path("stdlib")) or f.startswith("/opt/venv")):
            compileall.compile_file(f, quiet=1, invalidation_mode=UNCHECKED)
    compileall.compile_file("/app/gunicorn.conf.py", quiet=1,  # a mounted config is read afresh
                            invalidation_mode=compileall.py_compile.PycInvalidationMode.CHECKED_HASH)


def elf_files(paths) -> list[str]:
    out = []
    for p in paths:
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as fh:
                if fh.read(4) == ELF_MAGIC:
                    out.append(p)
    return out


def needed_libraries(elves: list[str]) -> set[str]:
    """Every library the ELF files load at start (ldd: the loader itself resolves them), and the loader."""
    libs = set()
    for elf in elves:
        text = subprocess.run(["ldd", elf], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if "not found" in line:
                raise SystemExit(f"rootfs: {elf} needs a library that is not installed: {line.strip()}")
            m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if m:
                libs.add(m.group(1))
    return libs


def dpkg_owners() -> dict[str, str]:
    """path -> package, from dpkg's file lists (each path also under its resolved form)."""
    owners = {}
    for lst in Path("/var/lib/dpkg/info").glob("*.list"):
        pkg = lst.stem
        for line in lst.read_text().splitlines():
            owners[line] = pkg
            owners.setdefault(os.path.realpath(line), pkg)
    return owners


def keep_dpkg_metadata(root: Root, packages: set[str]) -> None:
    """The status entries, file lists and copyright files of the kept packages, nothing else."""
    names = {p.split(":")[0] for p in packages}
    stanzas = Path("/var/lib/dpkg/status").read_text().strip().split("\n\n")
    kept = [s for s in stanzas if re.search(r"^Package: (\S+)$", s, re.M).group(1) in names]
    status = root.dest / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("\n\n".join(kept) + "\n")
    for pkg in sorted(packages):
        for suffix in (".list", ".md5sums"):
            path = f"/var/lib/dpkg/info/{pkg}{suffix}"
            if os.path.exists(path):
                root.keep(path)
        copyright_file = f"/usr/share/doc/{pkg.split(':')[0]}/copyright"
        if os.path.exists(copyright_file):
            root.keep(copyright_file)


def write_accounts(dest: Path) -> None:
    etc = dest / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                f"app:x:{APP_UID}:{APP_UID}::/nonexistent:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\napp:x:{APP_UID}:\n")
    tmp = dest / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: rootfs.py DEST", file=sys.stderr)
        return 2
    root = Root(Path(argv[0]))
    files = import_service()
    compile_imported(files)
    for p in stdlib_paths(files):
        if os.path.isdir(p):
            root.keep_tree(p)  # its __pycache__ holds only what compile_imported wrote
        else:
            root.keep(p)
            if p.endswith(".py") and os.path.exists(importlib.util.cache_from_source(p)):
                root.keep(importlib.util.cache_from_source(p))
    for top in KEEP_TREES:
        root.keep_tree(top)
    elves = elf_files([os.path.realpath(sys.executable)] + sorted(root.kept))
    for path in [os.path.realpath(sys.executable)] + sorted(needed_libraries(elves)):
        root.keep(path)
    for path in ("/etc/os-release", "/etc/debian_version"):
        root.keep(path)
    # lib-dynload must exist for the interpreter to find its exec prefix, even with nothing in it.
    dynload = root.dest / sysconfig.get_path("platstdlib").lstrip("/") / "lib-dynload"
    dynload.mkdir(parents=True, exist_ok=True)
    owners = dpkg_owners()
    packages = {owners[p] for p in root.kept if p in owners and not os.path.isdir(p)}
    keep_dpkg_metadata(root, packages)
    write_accounts(root.dest)
    print(f"rootfs: {len(root.kept)} paths, {len(packages)} Debian packages: {' '.join(sorted(packages))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
