#!/usr/bin/env python3
"""dmarctl_check.py DMARCTL - what a user of dmarctl observes: caps decoding of QEMU's
CAP/ECAP, lint exit codes 0/1/2, one stderr line and exit 2 for a non-DMAR or broken
file, JSON that parses, text output that escapes odd firmware bytes, fault-reason
texts. Tables are made here, byte by byte."""
import os, struct, subprocess, sys, tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL', what)


def run(*args):
    r = subprocess.run([DMARCTL] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def run_bytes(*args):
    r = subprocess.run([DMARCTL] + list(args), capture_output=True)
    return r.returncode, r.stdout, r.stderr


def table(structs, flags=1, oem=b'PYTEST', table_id=b'CHECKTBL', creator=b'PYT '):
    body = b''.join(structs)
    assert (len(oem), len(table_id), len(creator)) == (6, 8, 4)
    hdr = b'DMAR' + struct.pack('<IBB', 48 + len(body), 1, 0) + oem + table_id + \
        struct.pack('<I', 1) + creator + struct.pack('<I', 1) + bytes([38, flags]) + bytes(10)
    t = bytearray(hdr + body)
    t[9] = (-sum(t)) & 0xff
    return bytes(t)


def scope(typ, enum_id, bus, path):
    p = b''.join(bytes(x) for x in path)
    return bytes([typ, 6 + len(p), 0, 0, enum_id, bus]) + p


def drhd(flags, seg, base, scopes):
    s = b''.join(scopes)
    return struct.pack('<HHBBHQ', 0, 16 + len(s), flags, 0, seg, base) + s


def andd(device, name):
    name += b'\0'
    return struct.pack('<HHBBBB', 4, 8 + len(name), 0, 0, 0, device) + name


def main():
    with tempfile.TemporaryDirectory() as tmp:
        return checks(tmp)


def checks(tmp):
    def write(name, data):
        p = os.path.join(tmp, name)
        with open(p, 'wb') as f:
            f.write(data)
        return p

    # caps: QEMU 7.2's defaults.
    rc, out, err = run('caps', '0x00d2008c22260206', '0xf00f4a')
    check(rc == 0, 'caps exit 0')
    for want in ('39-bit(3-level)', 'maximum guest address width: 39 bits', 'superpages: 2M 1G',
                 'page-selective invalidation: yes', 'mask value for PSI: 18', 'domains: 65536',
                 'fault recording registers: 1', 'fault recording registers at 0x220',
                 'IOTLB registers at 0xf0', 'queued invalidation: yes', 'pass-through: yes',
                 'coherency (page walks snoop CPU caches): no'):
        check(want in out, 'caps shows %r' % want)
    check('48-bit' not in out, 'caps: no 48-bit width for QEMU default')
    rc, out, err = run('caps', 'zzz', '1')
    check(rc == 2 and err.count('\n') == 1, 'caps with a bad number: exit 2, one stderr line')

    # lint: clean, findings only, broken, not DMAR.
    ioapic = scope(3, 2, 0xf0, [(0x1f, 0)])
    hpet = scope(4, 0, 0, [(0x1f, 7)])
    clean = table([drhd(0, 0, 0xfed90000, [scope(1, 0, 0, [(2, 0)])]),
                   drhd(1, 0, 0xfed91000, [ioapic, hpet])])
    dup = table([drhd(0, 0, 0xfed90000, [scope(1, 0, 0, [(2, 0)]), hpet]),
                 drhd(1, 0, 0xfed91000, [ioapic, hpet])])
    p_clean, p_dup = write('clean.dat', clean), write('dup.dat', dup)
    rc, out, err = run('lint', p_clean)
    check(rc == 0 and out == '' and err == '', 'lint clean table: exit 0, no output')
    rc, out, err = run('lint', p_dup)
    check(rc == 1 and out.count('\n') == 1 and 'duplicate-hpet' in out, 'lint duplicate HPET: exit 1, one line')
    for name, data in (('truncated.dat', clean[:-3]), ('zero.dat', clean[:48] + bytes(4)),
                       ('notdmar.dat', b'APIC' + clean[4:]), ('text.dat', b'hello world\n'),
                       ('empty.dat', b'')):
        p = write(name, data)
        for cmd in (['lint'], ['table'], ['table', '--json']):
            rc, out, err = run(*(cmd + [p]))
            check(rc == 2 and out == '' and err.count('\n') == 1 and err.startswith('dmarctl: '),
                  '%s %s: exit 2 and exactly one stderr line (got %d, %r)' % (' '.join(cmd), name, rc, err))
    rc, out, err = run('lint', os.path.join(tmp, 'missing.dat'))
    check(rc == 2 and err.count('\n') == 1, 'lint of a missing file: exit 2, one line')

    # table: text names the structures; JSON parses with python3 -m json.tool.
    rc, out, err = run('table', p_dup)
    check(rc == 0 and 'DRHD segment 0 address 0xfed91000' in out and 'INCLUDE_PCI_ALL' in out,
          'table text shows DRHDs')
    rc, out, err = run('table', '--json', p_dup)
    jt = subprocess.run([sys.executable, '-m', 'json.tool'], input=out, capture_output=True, text=True)
    check(rc == 0 and jt.returncode == 0, 'table --json parses with json.tool')
    import json
    j = json.loads(out)
    check(len(j['structures']) == 2 and j['structures'][1]['address'] == '0xfed91000'
          and j['structures'][1]['scopes'][1]['type'] == 'hpet' and j['findings'][0]['name'] == 'duplicate-hpet',
          'JSON fields')

    # Header IDs and ANDD names with bytes outside printable ASCII: the text output shows
    # them as C escapes (\xNN, \\, \"), NUL padding dropped, and stays ASCII; lint names
    # the offending header bytes. JSON escapes them its own way.
    odd = table([drhd(1, 0, 0xfed91000, [ioapic, hpet]), andd(1, b'\\_SB.I2C\x01\xe9')],
                oem=b'A\x01"\\\xd2 ', table_id=b'SNB \0\0\0\0', creator=b'\xd2\x04\0\0')
    p_odd = write('odd.dat', odd)
    rc, out, err = run_bytes('table', p_odd)
    check(rc == 0 and all(c < 0x7f and (c >= 0x20 or c == 0x0a) for c in out),
          'table text with odd bytes is printable ASCII (got %r)' % out[:200])
    text = out.decode('ascii', 'replace')
    check('OEM "A\\x01\\"\\\\\\xd2 " table "SNB " revision 0x1, creator "\\xd2\\x04" revision 0x1\n' in text,
          'table text escapes header IDs (got %r)' % text.splitlines()[1:2])
    check('ANDD device 1 name "\\\\_SB.I2C\\x01\\xe9"' in text,
          'table text escapes the ANDD name (got %r)' % [l for l in text.splitlines() if 'ANDD' in l])
    rc, out, err = run('lint', p_odd)
    lines = out.splitlines()
    check(rc == 1 and len(lines) == 2 and all('header-id-not-ascii' in l for l in lines) and
          ': 0xb header-id-not-ascii' in lines[0] and '(value 0x1)' in lines[0] and
          ': 0x1c header-id-not-ascii' in lines[1] and '(value 0xd2)' in lines[1],
          'lint reports the OEM ID and creator ID bytes (got %r)' % lines)
    rc, out, err = run('table', '--json', p_odd)
    j = json.loads(out) if rc == 0 else {}
    check(j.get('oem_id') == 'A\x01"\\\xd2 ' and j.get('creator_id') == '\xd2\x04',
          'JSON header IDs (got %r)' % ({k: j.get(k) for k in ('oem_id', 'creator_id')}))
    rc, out, err = run('table', p_clean)
    check(rc == 0 and 'OEM "PYTEST" table "CHECKTBL" revision 0x1, creator "PYT " revision 0x1\n' in out,
          'table text of plain header IDs unchanged')

    # The rules a firmware engineer expects, through dmarctl: a unit above the host
    # address width (38 + 1 bits here), two units sharing registers, one device twice.
    ep = scope(1, 0, 0, [(2, 0)])
    rules = table([drhd(0, 0, 1 << 39, [ep]), drhd(0, 0, 0xfed90000, [ep]),
                   drhd(1, 0, 0xfed90000, [ioapic, hpet])])
    rc, out, err = run('lint', write('rules.dat', rules))
    names = [l.split()[2].rstrip(':') for l in out.splitlines()]
    check(rc == 1 and sorted(names) == ['drhd-beyond-haw', 'drhd-overlap', 'duplicate-drhd-device'],
          'lint names the new rules (got %r)' % out)

    # fault reasons.
    rc, out, err = run('fault-reason', '5')
    check(rc == 0 and 'write' in out and 'DMA remapping' in out, 'fault-reason 5')
    rc, out, err = run('fault-reason', '0x26')
    check(rc == 0 and 'source-id' in out, 'fault-reason 0x26')
    rc, out, err = run('fault-reason', '0xee')
    check(rc == 0 and 'reserved/unknown' in out, 'fault-reason unknown code')
    rc, out, err = run('fault-reason', 'x')
    check(rc == 2 and err.count('\n') == 1, 'fault-reason bad argument')
    rc, out, err = run('bogus')
    check(rc == 2, 'unknown command: exit 2')

    # caps decodes every real unit of tests/data/real_units.tsv: SAGAW, MGAW and NFR as
    # the register layout gives them (computed here, independently).
    units = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'data',
                         'real_units.tsv')
    rows = [l.rstrip('\n').split('\t') for l in open(units) if l.strip() and not l.startswith('#')][1:]
    check(len(rows) >= 40, 'real_units.tsv has at least 40 units')
    for r in rows:
        cap, ecap = int(r[2], 16), int(r[3], 16)
        rc, out, err = run('caps', r[2], r[3])
        sagaw = (cap >> 8) & 0x1f
        mgaw = ((cap >> 16) & 0x3f) + 1
        nfr = ((cap >> 40) & 0xff) + 1
        check(rc == 0 and ('CAP.SAGAW   0x%x ' % sagaw) in out and
              ('maximum guest address width: %d bits' % mgaw) in out and
              ('fault recording registers: %d\n' % nfr) in out and
              ('ECAP 0x%016x' % ecap) in out, 'caps of real unit %s' % r[0])

    print('dmarctl checks: %d failures' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    DMARCTL = sys.argv[1]
    sys.exit(main())
