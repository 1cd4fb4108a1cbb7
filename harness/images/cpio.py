"""A writer for newc cpio archives (Linux initramfs), so root filesystems need no root
privileges: device nodes and ownership are written into the archive, not the host."""
from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path


class CpioWriter:
    def __init__(self, path: Path, leave_out: tuple[str, ...] = ()):
        """leave_out: fnmatch patterns of archive paths that are not written (counted in
        left_out: entries and bytes)."""
        self.f = open(path, "wb")
        self.ino = 1
        self.names: set[str] = set()
        self.leave_out = leave_out
        self.left_out = {"entries": 0, "bytes": 0}

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.strip("/")
        if name in self.names:
            return
        if any(fnmatch.fnmatchcase(name, p) for p in self.leave_out):
            self.left_out["entries"] += 1
            self.left_out["bytes"] += len(data)
            return
        self.names.add(name)
        encoded = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.f.write(hdr + encoded)
        self.f.write(b"\0" * (-(len(hdr) + len(encoded)) % 4))
        self.f.write(data)
        self.f.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str, mode: int = 0o755) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts)):           # parents first
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)
        self._entry(name, stat.S_IFDIR | mode)

    def _parents(self, name: str) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._parents(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._parents(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def tree(self, root: Path, prefix: str = "") -> None:
        """Add a host directory tree below prefix (symlinks kept as symlinks)."""
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            rel = Path(dirpath).relative_to(root)
            base = f"{prefix}/{rel}" if str(rel) != "." else prefix
            if base.strip("/"):
                self.dir(base)
            for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(dirpath, d))):
                p = Path(dirpath) / name
                if p.is_symlink():
                    self.symlink(f"{base}/{name}", os.readlink(p))
                elif p.is_file():
                    self.file(f"{base}/{name}", p.read_bytes(), p.stat().st_mode & 0o777)

    def close(self) -> None:
        self._entry("TRAILER!!!", 0)
        self.f.close()
