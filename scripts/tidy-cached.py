#!/usr/bin/env python3
"""clang-tidy over translation units, skipping the ones already clean.

A unit is skipped when clang-tidy found it clean before with the same key: the sha256 of the
clang-tidy version, every .clang-tidy in the tree, the unit's compile command and its
preprocessed source (so any change to it or to a header it includes reruns it). Only clean
results are cached, so a failure is always reported again.

  scripts/tidy-cached.py BUILD_DIR FILE.cpp...
Cache: $SLIDESTREAM_TIDY_CACHE or ~/.cache/slidestream/clang-tidy (delete it to force a run).
"""
import concurrent.futures
import hashlib
import json
import os
import pathlib
import shlex
import subprocess
import sys


def main() -> int:
    build = pathlib.Path(sys.argv[1]).resolve()
    files = [pathlib.Path(f).resolve() for f in sys.argv[2:]]
    root = pathlib.Path(__file__).resolve().parent.parent
    cache = pathlib.Path(os.environ.get("SLIDESTREAM_TIDY_CACHE",
                                        pathlib.Path.home() / ".cache/slidestream/clang-tidy"))
    cache.mkdir(parents=True, exist_ok=True)
    commands = {}
    for entry in json.loads((build / "compile_commands.json").read_text()):
        commands[str(pathlib.Path(entry["directory"], entry["file"]).resolve())] = entry
    base = hashlib.sha256()
    base.update(subprocess.run(["clang-tidy", "--version"], capture_output=True).stdout)
    for config in sorted(root.rglob(".clang-tidy")):
        if "build" not in config.relative_to(root).parts[:1]:
            base.update(config.read_bytes())

    def key_of(path: pathlib.Path) -> str:
        entry = commands.get(str(path))
        if entry is None:
            return ""
        args = entry.get("arguments") or shlex.split(entry["command"])
        # Drop a compiler launcher (cmake -E env ... ccache) before the compiler itself.
        while args and not (args[0].endswith("c++") or args[0].endswith("g++") or
                            args[0].endswith("clang++")):
            args = args[1:]
        cleaned, skip = [], False
        for arg in args:
            if skip:
                skip = False
                continue
            if arg in ("-o", "-MF", "-MT", "-MQ"):
                skip = True
                continue
            if arg in ("-c", "-MD", "-MMD"):
                continue
            cleaned.append(arg)
        # Keys do not depend on where the checkout lives, so a fresh clone reuses them.
        def portable(data: bytes) -> bytes:
            return data.replace(str(build).encode(), b"<build>").replace(str(root).encode(),
                                                                          b"<root>")
        digest = base.copy()
        digest.update(portable(" ".join(cleaned).encode()))
        pre = subprocess.run(cleaned + ["-E", "-P"], cwd=entry["directory"], capture_output=True)
        if pre.returncode != 0:
            return ""
        digest.update(portable(pre.stdout))
        return digest.hexdigest()

    def check(path: pathlib.Path):
        key = key_of(path)
        if key and (cache / key).exists():
            return path, 0, "", True
        run = subprocess.run(["clang-tidy", "-p", str(build), "--quiet", str(path)],
                             capture_output=True, text=True)
        if run.returncode == 0 and key:
            (cache / key).write_text(str(path) + "\n")
        return path, run.returncode, run.stdout + run.stderr, False

    status, cached = 0, 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for path, code, output, hit in pool.map(check, files):
            cached += hit
            if code != 0:
                status = 1
                noise = ("warnings generated", "Suppressed", "Use -header-filter",
                         "Use -system-headers")
                print("\n".join(line for line in output.splitlines()
                                if not any(n in line for n in noise)), file=sys.stderr)
    print(f"lint: clang-tidy: {len(files) - cached} units checked, {cached} unchanged since a "
          f"clean run (cache {cache})")
    return status


if __name__ == "__main__":
    sys.exit(main())
