#!/usr/bin/env python3
"""Checks on the host that what the test kernel wrote through a storage controller is on
its disk image: for every line "# disk-check: NAME lba=L sectors=N seed=S sector=B" in
the kernel's log, sectors L..L+N-1 of the image given for NAME must hold the pattern of
kernel/tests/storage.h (storage_pattern).

    scripts/disk_check.py LOG NAME=IMAGE [NAME=IMAGE ...]

Prints one line per region and a closing "disk-check: N verified, N wrong"; exit 0 when
every region is right, 1 otherwise (also when a line names a disk without an image)."""
import re
import sys

M32 = 0xFFFFFFFF


def pattern(seed, lba, offset):
    x = (seed * 2654435761) & M32
    x ^= ((lba & M32) * 40503) & M32
    x ^= (lba >> 32) & M32
    x ^= (offset * 2246822519) & M32
    x ^= x >> 15
    return ((x * 3266489917) & M32) >> 24


def region_ok(image, lba, sectors, seed, sector):
    with open(image, "rb") as f:
        f.seek(lba * sector)
        data = f.read(sectors * sector)
    if len(data) != sectors * sector:
        return "image too short"
    for s in range(sectors):
        base = s * sector
        for off in range(sector):
            if data[base + off] != pattern(seed, lba + s, off):
                return "sector %d byte %d is %#x, expected %#x" % (
                    lba + s, off, data[base + off], pattern(seed, lba + s, off))
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    images = dict(a.split("=", 1) for a in argv[2:])
    line_re = re.compile(
        r"# disk-check: (\S+) lba=(\d+) sectors=(\d+) seed=(\d+) sector=(\d+)")
    good = bad = 0
    with open(argv[1], errors="replace") as log:
        for line in log:
            m = line_re.search(line)
            if not m:
                continue
            name = m.group(1)
            lba, sectors, seed, sector = (int(m.group(i)) for i in range(2, 6))
            if name not in images:
                print("disk-check: %s: no image given for this disk" % name)
                bad += 1
                continue
            why = region_ok(images[name], lba, sectors, seed, sector)
            if why:
                print("disk-check: %s lba %d (+%d): WRONG: %s" % (name, lba, sectors, why))
                bad += 1
            else:
                print("disk-check: %s lba %d (+%d sectors): on the disk" % (name, lba, sectors))
                good += 1
    print("disk-check: %d verified, %d wrong" % (good, bad))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
