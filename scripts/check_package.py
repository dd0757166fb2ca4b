"""Checks the Functions package that scripts/package writes, as the Functions host will see it.

Usage: .tools/pytools/bin/python3 scripts/check_package.py [ZIP]   (scripts/test runs it)

- layout: exactly host.json, the handler and one FOLDER/function.json per folder of
  function_definitions/, at the zip's root, with the repository's bytes;
- modes: Unix entries, the handler 755 and the rest 644 (the host cannot chmod a mounted
  package);
- size: at most 15 MiB zipped;
- the handler: an x86-64 ELF executable without a symbol table or debug sections, whose
  highest glibc symbol version is at most 2.31 (Debian 11, the oldest Functions Linux image;
  see scripts/package).

Prints what it found; exits 1 with every problem it found.
"""

import io
import os
import stat
import sys
import zipfile

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MAX_ZIPPED = 15 * 1024 * 1024
MAX_GLIBC = (2, 31)


def glibc_versions(elf):
    """Every GLIBC_x.y version the executable needs, as tuples."""
    found = set()
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for _, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    name = aux.name
                    if name.startswith("GLIBC_") and name[6:].replace(".", "").isdigit():
                        found.add(tuple(int(p) for p in name[6:].split(".")))
    return found


def check(path, root):
    problems = []
    size = os.path.getsize(path)
    print(f"{path}: {size / 1024 / 1024:.2f} MiB zipped")
    if size > MAX_ZIPPED:
        problems.append(f"the zip is {size} bytes, over 15 MiB")
    functions = sorted(
        name
        for name in os.listdir(os.path.join(root, "function_definitions"))
        if os.path.isfile(os.path.join(root, "function_definitions", name, "function.json"))
    )
    expected = {"host.json": os.path.join(root, "host.json")}
    for function in functions:
        expected[f"{function}/function.json"] = os.path.join(
            root, "function_definitions", function, "function.json"
        )
    with zipfile.ZipFile(path) as zf:
        entries = {info.filename: info for info in zf.infolist()}
        wanted = set(expected) | {"handler"}
        for name in sorted(set(entries) - wanted):
            problems.append(f"unexpected entry {name}")
        for name in sorted(wanted - set(entries)):
            problems.append(f"missing entry {name}")
        for name, info in sorted(entries.items()):
            mode = info.external_attr >> 16
            want = 0o755 if name == "handler" else 0o644
            if info.create_system != 3 or not stat.S_ISREG(mode) or stat.S_IMODE(mode) != want:
                problems.append(
                    f"{name}: mode {oct(stat.S_IMODE(mode))} (system {info.create_system}), want a Unix file with mode {oct(want)}"
                )
        for name, source in expected.items():
            if name in entries:
                with open(source, "rb") as f:
                    if zf.read(name) != f.read():
                        problems.append(f"{name} differs from {os.path.relpath(source, root)}")
        if "handler" in entries:
            data = zf.read("handler")
            print(f"handler: {len(data) / 1024 / 1024:.2f} MiB")
            try:
                elf = ELFFile(io.BytesIO(data))
            except ELFError as error:
                problems.append(f"handler is not an ELF executable ({error})")
            else:
                problems.extend(check_handler(elf))
    return problems


def check_handler(elf):
    problems = []
    if elf["e_machine"] != "EM_X86_64" or elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
        problems.append(f"handler is {elf['e_machine']} {elf['e_type']}, not an x86-64 executable")
    names = [section.name for section in elf.iter_sections()]
    if ".symtab" in names:
        problems.append("handler has a symbol table: the release profile should strip it")
    debug = [name for name in names if name.startswith(".debug_")]
    if debug:
        problems.append(f"handler has debug sections: {', '.join(debug)}")
    versions = glibc_versions(elf)
    if not versions:
        problems.append("handler needs no GLIBC_ versions: is it dynamically linked to glibc?")
    else:
        highest = max(versions)
        print(f"handler: highest glibc symbol version {'.'.join(map(str, highest))}")
        if highest > MAX_GLIBC:
            problems.append(
                f"handler needs glibc {'.'.join(map(str, highest))}, newer than {'.'.join(map(str, MAX_GLIBC))}"
            )
    return problems


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target", "enroll-functions.zip")
    problems = check(path, root)
    for problem in problems:
        print(f"scripts/check_package.py: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
