"""Build the Lambda deployment zip: audit_bedrock plus its runtime dependencies, reproducibly.

boto3 and botocore are left out (the Lambda Python runtime provides them) unless --include-sdk is given;
the handlers refuse to run on a botocore older than the one the scanner needs. Third-party wheels are
fetched for the Lambda platform (--platform/--python-version), so compiled speed-ups match the runtime.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK = {"boto3", "botocore", "s3transfer"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def runtime_requirements(include_sdk: bool) -> list[str]:
    """The project's runtime dependencies from pyproject.toml, without the AWS SDK unless asked."""
    deps: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    if include_sdk:
        return deps
    return [d for d in deps if re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0].lower() not in SDK]


SOURCES = ("pyproject.toml", "README.md", "LICENSE", "scanner", "reports", "rules")


def pip(*args: str) -> None:
    """Run pip install quietly; its output is shown only when it fails."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"pip install failed ({proc.returncode})")


def install_package(target: Path) -> None:
    """Install audit_bedrock itself from a copy of the sources, so the build leaves nothing in the tree."""
    with tempfile.TemporaryDirectory(prefix="audit-bedrock-src-") as tmp:
        for name in SOURCES:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, Path(tmp) / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif src.is_file():
                shutil.copy2(src, Path(tmp) / name)
        pip("--target", str(target), "--no-deps", "--no-build-isolation", tmp)


def build_tree(target: Path, python_version: str, platform: str, include_sdk: bool) -> None:
    """Install the package and its dependencies into `target` (emptied first)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    install_package(target)
    reqs = runtime_requirements(include_sdk)
    if reqs:
        pip("--target", str(target), "--platform", platform, "--python-version", python_version,
            "--implementation", "cp", "--only-binary=:all:", *reqs)
    for cache in [p for p in target.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts point at this machine's python


def write_zip(tree: Path, out: Path) -> int:
    """Zip `tree` with sorted entries and fixed timestamps; returns the number of files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), FIXED_TIME)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)
    return len(files)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path, default=ROOT / "dist" / "audit-bedrock-lambda.zip")
    p.add_argument("--build-dir", type=Path, default=ROOT / "build" / "lambda")
    p.add_argument("--python-version", default="3.12", help="the Lambda runtime's Python (default 3.12)")
    p.add_argument("--platform", default="manylinux2014_x86_64", help="wheel platform (x86_64 functions)")
    p.add_argument("--include-sdk", action="store_true", help="bundle boto3/botocore instead of the runtime's")
    ns = p.parse_args(argv)
    build_tree(ns.build_dir, ns.python_version, ns.platform, ns.include_sdk)
    count = write_zip(ns.build_dir, ns.output)
    print(f"wrote {ns.output} ({count} files, {ns.output.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
