#!/usr/bin/env python3
"""The library's link-time namespace, as an embedder's linker sees it.

  check_symbols.py BUILD_DIR INCLUDE_DIR

- libdmar.a: every global symbol it defines starts with dmar_ (public API) or dmar__
  (internal), and the only symbols it needs from outside are memcpy, memset and memcmp.
- libdmar_model.a, libdmar_posix.a (the simulated machine): every global starts with dmar_.
- libdmar.so: exports exactly the functions declared in include/dmar/*.h, nothing else.
Prints one "ok"/"not ok" line per check and a last line "N passed, N failed".
"""
import os
import re
import subprocess
import sys

build, incdir = sys.argv[1], sys.argv[2]
ALLOWED_UNDEFINED = {"memcpy", "memset", "memcmp"}
results = []


def nm(args, path):
    out = subprocess.run(["nm"] + args + [path], check=True, capture_output=True, text=True)
    return out.stdout


def defined_globals(path):
    syms = set()
    for line in nm(["-g", "--defined-only"], path).splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms.add(parts[2])
    return syms


def undefined(path):
    syms = set()
    for line in nm(["-u"], path).splitlines():
        parts = line.split()
        if parts and not parts[-1].endswith(":"):
            syms.add(parts[-1])
    return syms


def report(name, bad):
    results.append(not bad)
    print(("ok - " if not bad else "not ok - ") + name)
    for b in sorted(bad)[:20]:
        print("    " + b)


def find(name):
    for root, _, files in os.walk(build):
        if name in files and "CMakeFiles" not in root:
            return os.path.join(root, name)
    return None


def public_functions():
    names = set()
    for h in sorted(os.listdir(os.path.join(incdir, "dmar"))):
        if not h.endswith(".h"):
            continue
        text = open(os.path.join(incdir, "dmar", h)).read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
        names |= set(re.findall(r"\b(dmar_[a-z0-9_]+)\s*\(", text))
    return names


lib = find("libdmar.a")
if not lib:
    report("libdmar.a found in " + build, ["missing"])
else:
    d = defined_globals(lib)
    report("libdmar.a defines only dmar_* globals", {s for s in d if not s.startswith("dmar_")})
    pub = public_functions()
    report("libdmar.a: its dmar_* (not dmar__*) globals are the public API of include/dmar",
           {s for s in d if s.startswith("dmar_") and not s.startswith("dmar__")} ^
           {s for s in pub})
    report("libdmar.a needs nothing but memcpy, memset, memcmp",
           undefined(lib) - d - ALLOWED_UNDEFINED)
for name in ("libdmar_model.a", "libdmar_posix.a"):
    path = find(name)
    if not path:
        report(name + " found", ["missing"])
        continue
    report(name + " defines only dmar_* globals",
           {s for s in defined_globals(path) if not s.startswith("dmar_")})
so = None
for root, _, files in os.walk(build):
    for f in files:
        if re.fullmatch(r"libdmar\.so\.\d+\.\d+\.\d+", f) and "CMakeFiles" not in root:
            so = os.path.join(root, f)
if not so:
    report("libdmar.so found", ["missing"])
else:
    exported = set()
    for line in nm(["-D", "--defined-only"], so).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW":
            exported.add(parts[2].split("@")[0])
    exported.discard("DMAR_0")
    pub = public_functions()
    report("libdmar.so exports exactly the public functions (missing / extra)",
           {"missing " + s for s in pub - exported} | {"extra " + s for s in exported - pub})
print("%d passed, %d failed" % (results.count(True), results.count(False)))
sys.exit(0 if all(results) else 1)
