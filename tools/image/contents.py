"""What an image holds, package by package: its Debian packages and Python distributions with the bytes
of their files that are present, as Markdown tables (docs/deploy.md shows them).

Usage: docker export "$(docker create IMAGE)" | python3 tools/image/contents.py -
       (`tools/image.sh contents` does exactly that for $IMAGE)

Debian packages come from /var/lib/dpkg/status and their file lists; Python distributions from the
venv's *.dist-info (METADATA names them, RECORD lists their files). Files no package claims are summed
under "other" (the model, gunicorn's config, dpkg's own metadata, passwd); a .pyc written at build time
counts with the package of its source.
Standard library only.
"""
from __future__ import annotations

import csv
import io
import re
import sys
import tarfile

STATUS = "var/lib/dpkg/status"


def read_export(stream) -> tuple[dict[str, int], dict[str, bytes]]:
    """(path -> size of every regular file, path -> content of the metadata files) from a tar stream."""
    sizes, texts = {}, {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            path = member.name.lstrip("./")
            sizes[path] = member.size
            if path == STATUS or (path.startswith("var/lib/dpkg/info/") and path.endswith(".list")) \
                    or re.search(r"\.dist-info/(METADATA|RECORD)$", path):
                texts[path] = tar.extractfile(member).read()
    return sizes, texts


def source_of(pyc: str) -> str:
    """dir/__pycache__/name.cpython-313.pyc -> dir/name.py: a .pyc written at build time, in no file list."""
    folder, _, name = pyc.rpartition("/__pycache__/")
    return f"{folder}/{name.split('.')[0]}.py"


def with_pyc(files: set[str], sizes) -> list[str]:
    """The files present, plus the .pyc compiled from them."""
    present = [p for p in files if p in sizes]
    return present + [p for p in sizes
                      if p.endswith(".pyc") and "/__pycache__/" in p and source_of(p) in files]


def debian(sizes, texts) -> list[tuple[str, str, int, int]]:
    """[(package, version, bytes present, files present)] from dpkg's status and file lists."""
    rows = []
    for stanza in texts[STATUS].decode().strip().split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.M))
        name, arch = fields["Package"], fields.get("Architecture", "all")
        info = "var/lib/dpkg/info/"
        listed = texts.get(f"{info}{name}:{arch}.list") or texts.get(f"{info}{name}.list")
        present = with_pyc({p.lstrip("/") for p in (listed or b"").decode().splitlines()}, sizes)
        rows.append((name, fields["Version"], sum(sizes[p] for p in present), len(present)))
    return rows


def python(sizes, texts) -> list[tuple[str, str, int, int]]:
    """[(distribution, version, bytes present, files present)] from each dist-info's METADATA and RECORD."""
    rows = []
    for meta in sorted(p for p in texts if p.endswith("/METADATA")):
        head = texts[meta].decode(errors="replace")
        name = re.search(r"^Name: (.+)$", head, re.M).group(1).strip()
        version = re.search(r"^Version: (.+)$", head, re.M).group(1).strip()
        site = meta.rsplit("/", 2)[0]
        record = texts.get(meta[: -len("METADATA")] + "RECORD", b"").decode()
        present = with_pyc({f"{site}/{row[0]}" for row in csv.reader(io.StringIO(record)) if row}, sizes)
        rows.append((name, version, sum(sizes[p] for p in present), len(present)))
    return rows


def table(title: str, rows) -> str:
    out = [f"| {title} | version | MB | files |", "| --- | --- | ---: | ---: |"]
    for name, version, size, count in sorted(rows, key=lambda r: -r[2]):
        out.append(f"| {name} | {version} | {size / 1e6:.1f} | {count} |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if argv != ["-"]:
        print("usage: docker export \"$(docker create IMAGE)\" | python3 tools/image/contents.py -",
              file=sys.stderr)
        return 2
    sizes, texts = read_export(sys.stdin.buffer)
    if STATUS not in texts:
        print("contents: the image has no /var/lib/dpkg/status", file=sys.stderr)
        return 1
    deb, py = debian(sizes, texts), python(sizes, texts)
    total = sum(sizes.values())
    deb_bytes, py_bytes = sum(r[2] for r in deb), sum(r[2] for r in py)
    print(table(f"Debian package ({len(deb)})", deb))
    print()
    print(table(f"Python distribution ({len(py)})", py))
    print()
    print(f"Files: {total / 1e6:.1f} MB in all: Debian packages {deb_bytes / 1e6:.1f} MB, Python "
          f"distributions {py_bytes / 1e6:.1f} MB, other {(total - deb_bytes - py_bytes) / 1e6:.1f} MB.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
