#!/usr/bin/env python3
"""explain_check.py DMARCTL - `dmarctl explain` as a user sees it (1 to 3 below).
explain_check.py --tables DMARCTL CORPUS_DIR - only the rows' checks against tables of
the real-table corpus (the end of 1); exit 77 (skipped) when the corpus is absent.

1. Every row of tests/data/fault_lines.tsv (real DMAR fault lines from public bug
   reports): piped through `dmarctl explain`, the text and the --json output must state
   the row's device, request, address or interrupt index, reason, PASID and count; the
   reason line must carry the library's text for that code. Rows naming a table of the
   real-table corpus are also explained against it: the remapping unit and scope, and
   where the address lies relative to the RMRRs (--tables).
2. Multi-line inputs built from those formats: grouping with a count, the two-line
   forms, decimal and hexadecimal reasons, log prefixes, unknown and damaged lines
   skipped, INTR-REMAP indexes, status and rate-limit lines, this library's own fault
   line, the interrupt range, RMRR inside / near / far against a table made here, unit
   and scope attribution (endpoint, INCLUDE_PCI_ALL, I/O APIC, HPET), exit statuses.
3. The fault-reason table (`dmarctl fault-reason`): every code of the specification's
   families known, the gaps reserved.
The last line is "N passed, N failed"; the exit status is 1 when a check failed.
"""
import json, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, '..', 'tests', 'data', 'fault_lines.tsv')

passed = 0
failed = 0
DMARCTL = ''
TABLES = False


def check(cond, what, detail=''):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print('FAIL %s%s' % (what, (': ' + detail) if detail else ''))


def explain(text, *args):
    """Runs `dmarctl explain ARGS` with `text` on standard input."""
    r = subprocess.run([DMARCTL, 'explain'] + list(args), input=text, capture_output=True,
                       text=True)
    return r.returncode, r.stdout, r.stderr


def explain_json(text, *args):
    rc, out, err = explain(text, '--json', *args)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err + ' [output is not JSON: %r]' % out[:200]


def reason_text(code):
    """The library's words for a code, through `dmarctl fault-reason`."""
    out = subprocess.run([DMARCTL, 'fault-reason', str(code)], capture_output=True,
                         text=True).stdout
    return out.split(': ', 1)[1].strip()


# ---- DMAR tables made here (ACPI DMAR, VT-d chapter 8) ----

def scope(typ, enum_id, bus, path):
    p = b''.join(bytes(x) for x in path)
    return bytes([typ, 6 + len(p), 0, 0, enum_id, bus]) + p


def drhd(flags, seg, base, scopes):
    s = b''.join(scopes)
    return struct.pack('<HHBBHQ', 0, 16 + len(s), flags, 0, seg, base) + s


def rmrr(seg, base, limit, scopes):
    s = b''.join(scopes)
    return struct.pack('<HHHHQQ', 1, 24 + len(s), 0, seg, base, limit) + s


def table(structs):
    body = b''.join(structs)
    hdr = b'DMAR' + struct.pack('<IBB', 48 + len(body), 1, 0) + b'EXPLN ' + b'CHECKTBL' + \
        struct.pack('<I', 1) + b'PYT ' + struct.pack('<I', 1) + bytes([38, 1]) + bytes(10)
    t = bytearray(hdr + body)
    t[9] = (-sum(t)) & 0xff
    return bytes(t)


ENDPOINT, BRIDGE, IOAPIC, HPET = 1, 2, 3, 4

# A client-like machine: the graphics unit lists 00:02.0, the other unit takes the rest
# (INCLUDE_PCI_ALL) and names the I/O APIC at f0:1f.0 and the HPET at 00:1f.0; graphics
# stolen memory and a USB buffer are RMRRs.
BUILT = table([
    drhd(0, 0, 0xfed90000, [scope(ENDPOINT, 0, 0, [(2, 0)])]),
    drhd(1, 0, 0xfed91000, [scope(IOAPIC, 2, 0xf0, [(0x1f, 0)]),
                            scope(HPET, 0, 0, [(0x1f, 0)])]),
    rmrr(0, 0x7c000000, 0x803fffff, [scope(ENDPOINT, 0, 0, [(2, 0)])]),
    rmrr(0, 0x40000000, 0x4001ffff, [scope(ENDPOINT, 0, 0, [(0x14, 0)])]),
])


def dma_line(dev, req, addr, reason=0x06):
    """A Linux 6.x fault line (the format of the fixture's NO_PASID rows)."""
    return ('[   12.000000] DMAR: [DMA %s NO_PASID] Request device [%s] fault addr 0x%x '
            '[fault reason 0x%02x] text\n' % (req, dev, addr, reason))


# ---- the fixture ----

def load_fixture():
    rows = []
    with open(FIXTURE) as f:
        header = None
        for line in f:
            line = line.rstrip('\n')
            if not line or line.startswith('#'):
                continue
            cols = line.split('\t')
            if header is None:
                header = cols
                continue
            row = dict(zip(header, cols))
            row['input'] = row['input'].replace('\\n', '\n').replace('\\t', '\t') + '\n'
            rows.append(row)
    return rows


def split_device(dev):
    parts = dev.split(':')
    seg = int(parts[0], 16) if len(parts) == 3 else None
    bus = int(parts[-2], 16)
    d, fn = parts[-1].split('.')
    return seg, bus, int(d, 16), int(fn, 16)


def check_row(row, corpus):
    name = 'fixture %s (%s)' % (row['id'], row['source'])
    count = int(row['count'])
    rc, groups, err = explain_json(row['input'], '--no-table')
    check(rc == 0 and groups is not None, name + ': --json runs', err)
    if groups is None:
        return
    check(len(groups) == (1 if count else 0), name + ': one fault group (none if damaged)',
          '%d groups' % len(groups))
    rc, text, err = explain(row['input'], '--no-table')
    check(rc == 0, name + ': text runs', err)
    if not count:
        check('no DMAR fault lines' in text, name + ': text says no fault lines', text)
        return
    if len(groups) != 1:
        return
    g = groups[0]
    seg, bus, dev, fn = split_device(row['device'])
    check((g['bus'], g['dev'], g['fn']) == (bus, dev, fn), name + ': device',
          str((g['bus'], g['dev'], g['fn'])))
    check(g['segment'] == (seg or 0) and g['segment_known'] == (seg is not None),
          name + ': segment', str((g['segment'], g['segment_known'])))
    check(g['request'] == row['request'], name + ': request', g['request'])
    addr = int(row['address'], 16)
    if row['request'] == 'interrupt':
        check(g['interrupt_index'] == addr and g['address'] is None, name + ': index',
              str(g['interrupt_index']))
    else:
        check(g['address'] == '0x%x' % addr, name + ': address', str(g['address']))
    reason = None if row['reason'] == '-' else int(row['reason'], 16)
    check(g['reason'] == reason, name + ': reason', str(g['reason']))
    pasid = None if row['pasid'] == '-' else int(row['pasid'], 16)
    check(g['pasid'] == pasid, name + ': pasid', str(g['pasid']))
    check(g['count'] == count, name + ': count', str(g['count']))

    # What the text says, line by line.
    head = (text.splitlines() or [''])[0]
    sbdf = '%04x:%02x:%02x.%x' % (seg or 0, bus, dev, fn)
    want = ('interrupt request, index 0x%x' % addr if row['request'] == 'interrupt'
            else 'DMA %s at 0x%x' % (row['request'], addr))
    check(head.startswith('fault 1: %s %s' % (sbdf, want)), name + ': text headline', head)
    check(('once' if count == 1 else '%d times' % count) in head, name + ': text count', head)
    if reason is not None:
        check('  reason   0x%02x (' % reason in text and reason_text(reason) in text,
              name + ': text gives the specification words for the reason', text)
    else:
        check('  reason   not in the log' in text, name + ': text says the reason is missing',
              text)
    check('unit     unknown: no DMAR table' in text, name + ': no table, no unit', text)

    if row['table'] == '-' or not TABLES:
        return
    tpath = os.path.join(corpus, row['table'])
    rc, groups, err = explain_json(row['input'], '--table', tpath)
    check(rc == 0 and groups and len(groups) == 1, name + ': --table runs', err)
    if not groups:
        return
    g = groups[0]
    if row['unit'] != '-':
        drhd_idx, kind = row['unit'].split()
        u = g['unit'] or {}
        check(u.get('drhd') == int(drhd_idx) and u.get('scope_kind') == kind,
              name + ': unit and scope from ' + row['table'], str(u))
    rc, text, err = explain(row['input'], '--table', tpath)
    unit_line = [l for l in text.splitlines() if l.startswith('  unit ')]
    if row['unit'] != '-':
        check(unit_line and unit_line[0].startswith('  unit     DRHD %s (registers at 0x' %
                                                    row['unit'].split()[0]),
              name + ': text names the unit', str(unit_line))
    notes = [n for n in g['address_notes'] if n['kind'].startswith('rmrr')]
    addr_lines = [l for l in text.splitlines() if l.startswith('  address ')]
    want = row['rmrr']
    if want == 'none':
        check(not notes, name + ': address in no RMRR', str(notes))
        check(any('in no RMRR of this table' in l for l in addr_lines),
              name + ': text says no RMRR', str(addr_lines))
    elif want != '-':
        where, idx = want.split()
        kind = {'inside': 'rmrr-inside', 'near': None}[where.split('-')[0]]
        own = where.endswith('-own')
        hit = [n for n in notes if n['rmrr'] == int(idx) and n['own'] == own and
               (n['kind'] == kind if kind else n['kind'] in ('rmrr-below', 'rmrr-above'))]
        check(len(hit) == 1, name + ': ' + want, str(notes))
        word = 'inside RMRR %s' % idx if kind else 'near RMRR %s' % idx
        check(any(word in l for l in addr_lines), name + ': text says ' + word, str(addr_lines))
        if kind and own:
            check(any('this very device' in l for l in addr_lines),
                  name + ': text says the RMRR is the device\'s own', str(addr_lines))
        if kind and not own:
            check(any('other devices, not this one' in l for l in addr_lines),
                  name + ': text says the RMRR belongs to others', str(addr_lines))


# ---- inputs made of several lines ----

def check_multiline(rows, tmp):
    by_id = {r['id']: r for r in rows}

    # Grouping: two real repeated faults interleaved with other lines and each other.
    a = by_id['ovmf23-repeat']['input'].splitlines(True)
    b = by_id['sriov286-repeat']['input'].splitlines(True)
    mixed = ''.join([a[0], b[0], a[1], 'usb 1-2: new device\n', a[2], b[1], a[3], a[4],
                     b[2], a[5], a[6]])
    rc, groups, err = explain_json(mixed, '--no-table')
    check(rc == 0 and groups is not None and
          [(g['address'], g['count']) for g in groups] == [('0x4f600000', 3),
                                                          ('0x9c000000', 3)],
          'grouping: interleaved repeats make two groups of 3, in order of first sight',
          str(groups and [(g['address'], g['count']) for g in groups]))
    rc, text, _ = explain(mixed, '--no-table')
    check('6 faults in 2 groups' in text and '3 times (lines' in text,
          'grouping: the text counts', text[-300:])
    # Same device, same address, other direction or reason: not the same fault.
    split = (dma_line('00:02.0', 'Read', 0x1000) + dma_line('00:02.0', 'Write', 0x1000, 5) +
             dma_line('00:02.0', 'Read', 0x1000, 0x0c) + dma_line('00:02.0', 'Read', 0x2000) +
             dma_line('00:03.0', 'Read', 0x1000) + dma_line('00:02.0', 'Read', 0x1000))
    rc, groups, _ = explain_json(split, '--no-table')
    check(groups is not None and [g['count'] for g in groups] == [2, 1, 1, 1, 1],
          'grouping: direction, reason, address and device each split a group',
          str(groups and [g['count'] for g in groups]))

    # Status and rate-limit lines.
    rc, groups, _ = explain_json(by_id['ovmf23-repeat']['input'], '--no-table')
    check(groups and groups[0]['fault_status'] == [3], 'status: value 3 kept with the fault',
          str(groups and groups[0]['fault_status']))
    rc, text, _ = explain(by_id['ovmf23-repeat']['input'], '--no-table')
    check('3 fault-status lines' in text and 'suppressed 893 more' in text,
          'status: lines counted, suppressed messages reported', text[-300:])
    check('PPF (primary fault pending)' in text and 'PFO (primary fault overflow' in text,
          'status: 3 decoded as PPF and PFO', text)
    rc, text, _ = explain(by_id['marvell84-status']['input'], '--no-table')
    check('0x402:' in text and 'fault recording register 4' in text,
          'status: 0x402 names fault recording register 4', text)
    later = 'DMAR: DRHD: handling fault status reg 3\nsomething else\n' + dma_line(
        '00:02.0', 'Read', 0x1000)
    rc, groups, _ = explain_json(later, '--no-table')
    check(groups and groups[0]['fault_status'] == [],
          'status: a status line does not stick to faults after other lines',
          str(groups and groups[0]['fault_status']))

    # Unknown lines: skipped, never an error.
    noise = ('\n' + '[    0.000000] Linux version 6.1.0\n' + 'DMAR: IOMMU enabled\n' +
             'DMAR: [Firmware Bug]: No firmware reserved region can cover this RMRR\n' +
             'DMAR: [DMA Read] Request device [zz:02.0] fault addr 1000 [fault reason 06] x\n' +
             'DMAR: [DMA Read] Request device [00:20.0] fault addr 1000 [fault reason 06] x\n' +
             'DMAR: [DMA Read] Request device [00:02.9] fault addr 1000 [fault reason 06] x\n' +
             'DMAR: [DMA Read] Request device [00:02.0] fault addr 1000 [fault reason 0x100] x\n'
             + 'DMAR: [DMA Read] Request device [00:02.0] fault addr [fault reason 06] x\n' +
             'DMAR: [fault reason 06] orphan reason line\n' + '\x01\x02 binary \xff junk\n')
    rc, text, err = explain(noise, '--no-table')
    check(rc == 0 and 'no DMAR fault lines in 11 lines of input' in text,
          'unknown lines: skipped, exit 0', '%d %s %s' % (rc, text, err))
    rc, groups, _ = explain_json(noise, '--no-table')
    check(rc == 0 and groups == [], 'unknown lines: --json gives []', str(groups))
    rc, text, _ = explain('', '--no-table')
    check(rc == 0 and 'no DMAR fault lines in 0 lines' in text, 'empty input: exit 0', text)

    # Two-line forms.
    head = by_id['lkml2013-twoline']['input'].splitlines(True)
    rc, groups, _ = explain_json(head[0] + 'e1000e: eth0 NIC Link is Up\n' + head[1],
                                 '--no-table')
    check(groups and len(groups) == 1 and groups[0]['reason'] == 0x0c and
          groups[0]['format'] == 'linux-old',
          'two-line: reason line found after an unrelated line; "12" is decimal (0x0c)',
          str(groups))
    rc, groups, _ = explain_json(head[0] + head[0].replace('1a45aa9000', '2000') + head[1],
                                 '--no-table')
    check(groups and [(g['address'], g['reason']) for g in groups] ==
          [('0x1a45aa9000', None), ('0x2000', 0x0c)],
          'two-line: a head without its reason line keeps "reason unknown"',
          str(groups and [(g['address'], g['reason']) for g in groups]))
    rc, text, _ = explain(head[0], '--no-table')
    check('  reason   not in the log' in text, 'two-line: missing reason said in text', text)
    old_intr = ('[    1.1] INTR-REMAP: Request device [[f0:1f.0] fault index 1e\n'
                '[    1.1] INTR-REMAP:[fault reason 34] Present field in the IRTE entry is '
                'clear\n')
    rc, groups, _ = explain_json(old_intr, '--no-table')
    check(groups and len(groups) == 1 and groups[0]['request'] == 'interrupt' and
          groups[0]['interrupt_index'] == 0x1e and groups[0]['reason'] == 0x22,
          'two-line INTR-REMAP: index 0x1e, reason 34 = 0x22', str(groups))
    xen = by_id['qubes1491-xen']['input'].replace('reason 05', 'reason 0c')
    rc, groups, _ = explain_json(xen, '--no-table')
    check(groups and groups[0]['reason'] == 0x0c and groups[0]['format'] == 'xen',
          'two-line Xen: "0c" is hexadecimal', str(groups))
    xen12 = by_id['qubes1491-xen']['input'].replace('reason 05', 'reason 12')
    rc, groups, _ = explain_json(xen12, '--no-table')
    check(groups and groups[0]['reason'] == 0x12, 'two-line Xen: "12" is 0x12, not 12',
          str(groups))

    # One-line reasons: decimal before 5.14, hexadecimal with 0x.
    for line, want in (
            ('DMAR: [INTR-REMAP] Request device [42:00.2] fault index 1600 [fault reason 37] '
             'Blocked a compatibility format interrupt request\n', (0x1600, 0x25)),
            ('DMAR: [INTR-REMAP] Request device [00:11.0] fault index 3b [fault reason 38] '
             'Blocked an interrupt request due to source-id verification failure\n',
             (0x3b, 0x26)),
            ('DMAR: [INTR-REMAP] Request device [65:00.0] fault index 0x25 [fault reason 0x22]'
             ' Present field in the IRTE entry is clear\n', (0x25, 0x22))):
        rc, groups, _ = explain_json(line, '--no-table')
        check(groups and (groups[0]['interrupt_index'], groups[0]['reason']) == want and
              groups[0]['request'] == 'interrupt',
              'INTR-REMAP index and reason: %r' % line[:70], str(groups))
    rc, text, _ = explain('DMAR: [INTR-REMAP] Request device [65:00.0] fault index 0x25 '
                          '[fault reason 0x22] Present field in the IRTE entry is clear\n',
                          '--no-table')
    check('interrupt request, index 0x25, reason 0x22' in text and
          'interrupt request: the device' in text and 'vector was freed' in text,
          'INTR-REMAP: text names the index and what 0x22 usually means', text)

    # Prefixes: timestamps, syslog, journal, printk levels.
    core = ('DMAR: [DMA Write NO_PASID] Request device [05:00.0] fault addr 0x69974000 '
            '[fault reason 0x05] PTE Write access is not set')
    for prefix in ('', '[    1.587809] ', '<3>', '<3>[    1.587809] ', 'kernel: ',
                   'Nov 10 12:00:01 host kernel: ', 'Nov 10 12:00:01 host kernel: [ 1.5] ',
                   '[Thu Oct 22 08:54:51 2020] '):
        rc, groups, _ = explain_json(prefix + core + '\n', '--no-table')
        check(groups and len(groups) == 1 and groups[0]['request'] == 'write' and
              groups[0]['address'] == '0x69974000' and groups[0]['reason'] == 5,
              'prefix %r is skipped' % prefix, str(groups))

    # This library's own fault line (README "What make demo shows", QEMU) and the
    # bare-metal port's prefix.
    own = ('      driver: dmar0: DMA write fault #1 from 0000:00:02.0 (sid 0x0010) at 0x14d000: '
           'reason 0x05 (write request to a page whose paging entry does not grant write (W) '
           'permission); walk: domain 0 (3-level): iova 0x14d000: level 2 index 0 entry 0x0: '
           'not present\n'
           '# dmar error: dmar1: DMA read fault #7 from 0001:3a:00.1 (sid 0x3a01) at '
           '0xfee00000: reason 0x06 (read request)\n')
    rc, groups, _ = explain_json(own, '--no-table')
    check(groups and [(g['segment'], g['segment_known'], g['device'], g['request'],
                       g['address'], g['reason'], g.get('logged_by_unit'), g['format'])
                      for g in groups] ==
          [(0, True, '00:02.0', 'write', '0x14d000', 5, 0, 'dmar'),
           (1, True, '3a:00.1', 'read', '0xfee00000', 6, 1, 'dmar')],
          "this library's fault lines", str(groups))

    # The interrupt address range.
    for addr, inside in ((0xfee00000, True), (0xfeeff000, True), (0xfedff000, False),
                         (0xfef00000, False)):
        rc, groups, _ = explain_json(dma_line('00:1c.0', 'Write', addr, 5), '--no-table')
        kinds = groups and [n['kind'] for n in groups[0]['address_notes']]
        check(groups and ('interrupt-range' in kinds) == inside,
              'interrupt range: 0x%x %s' % (addr, 'inside' if inside else 'outside'),
              str(kinds))
    rc, text, _ = explain(dma_line('00:1c.0', 'Write', 0xfee01000, 5), '--no-table')
    check('is in the interrupt address range 0xfee00000-0xfeefffff' in text,
          'interrupt range: said in text', text)

    # RMRRs and units against a table made here.
    tpath = os.path.join(tmp, 'built.dat')
    with open(tpath, 'wb') as f:
        f.write(BUILT)

    def notes(dev, req, addr):
        rc, groups, err = explain_json(dma_line(dev, req, addr), '--table', tpath)
        if rc or not groups:
            return None, err
        return [(n['kind'], n.get('rmrr'), n.get('own')) for n in groups[0]['address_notes']
                if n['kind'].startswith('rmrr')], groups[0]

    for dev, addr, want, what in (
            ('00:02.0', 0x7c346000, [('rmrr-inside', 0, True)], 'inside its own RMRR'),
            ('00:02.0', 0x7c000000, [('rmrr-inside', 0, True)], 'first page of its RMRR'),
            ('00:02.0', 0x803ff000, [('rmrr-inside', 0, True)], 'last page of its RMRR'),
            ('00:02.0', 0x80400000, [('rmrr-above', 0, True)], 'right past its RMRR'),
            ('00:02.0', 0x804ff000, [('rmrr-above', 0, True)], '1020 KiB past its RMRR'),
            ('00:02.0', 0x80500000, [], '1 MiB past its RMRR: not near'),
            ('00:14.0', 0x3ffff000, [('rmrr-below', 1, True)], 'a page below its RMRR'),
            ('00:1f.3', 0x40010000, [('rmrr-inside', 1, False)], "inside 00:14.0's RMRR"),
            ('00:1f.3', 0x3ff00000, [('rmrr-below', 1, False)], "1 MiB below 00:14.0's RMRR"),
            ('00:1f.3', 0x3feff000, [], "more than 1 MiB below 00:14.0's RMRR"),
            ('00:1f.3', 0x10b6fa000, [], 'far from every RMRR')):
        got, g = notes(dev, 'Read', addr)
        check(got == want, 'RMRR: %s 0x%x %s' % (dev, addr, what), str(got))
    rc, text, _ = explain(dma_line('00:14.0', 'Read', 0x3ffff000), '--table', tpath)
    check('near RMRR 1 (0x40000000-0x4001ffff, for 00:14.0, this device): 4 KiB below its '
          'start' in text, 'RMRR: near said in text with the distance', text)
    rc, text, _ = explain(dma_line('00:02.0', 'Read', 0x80400000), '--table', tpath)
    check('near RMRR 0 (0x7c000000-0x803fffff, for 00:02.0, this device): right past its end'
          in text, 'RMRR: the page right after an RMRR is near it', text)
    rc, groups, _ = explain_json(dma_line('00:1f.3', 'Read', 0x40010000), '--table', tpath)
    n = groups and groups[0]['address_notes']
    check(n and n[0]['devices'] == ['00:14.0'] and n[0]['base'] == '0x40000000' and
          n[0]['limit'] == '0x4001ffff', 'RMRR: --json names its range and devices', str(n))
    rc, text, _ = explain(dma_line('00:1f.3', 'Read', 0x40010000), '--table', tpath)
    check('inside RMRR 1 (0x40000000-0x4001ffff, for 00:14.0), which the firmware reserves '
          'for other devices' in text, 'RMRR: another device\'s RMRR named with its device',
          text)

    # Units and scopes.
    for line, want, what in (
            (dma_line('00:02.0', 'Read', 0x1000), (0, 'endpoint', 0xfed90000),
             'endpoint scope'),
            (dma_line('00:14.0', 'Read', 0x1000), (1, 'include-pci-all', 0xfed91000),
             'INCLUDE_PCI_ALL'),
            ('DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x1e [fault reason 0x22]'
             ' Present field in the IRTE entry is clear\n', (1, 'ioapic', 0xfed91000),
             'I/O APIC scope'),
            ('DMAR: [INTR-REMAP] Request device [00:1f.0] fault index 0x0 [fault reason 0x25]'
             ' Blocked a compatibility format interrupt request\n', (1, 'hpet', 0xfed91000),
             'HPET scope')):
        rc, groups, err = explain_json(line, '--table', tpath)
        u = groups and groups[0]['unit']
        check(u and (u['drhd'], u['scope_kind'], int(u['base'], 16)) == want,
              'unit: ' + what, str(u) + err)
    rc, text, _ = explain('DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x1e '
                          '[fault reason 0x22] x\n', '--table', tpath)
    check('unit     DRHD 1 (registers at 0xfed91000, segment 0) covers it through its I/O '
          'APIC scope (I/O APIC id 2, f0:1f.0)' in text, 'unit: I/O APIC said in text', text)
    rc, text, _ = explain(dma_line('00:02.0', 'Read', 0x1000), '--table', tpath)
    check('covers it through its device scope: endpoint 00:02.0' in text,
          'unit: endpoint scope said in text', text)
    check(text.startswith('DMAR table: %s (2 remapping units, 2 RMRRs)' % tpath),
          'unit: the table used is named', text[:200])
    rc, groups, _ = explain_json('dmar0: DMA read fault #1 from 0001:00:02.0 (sid 0x0010) at '
                                 '0x1000: reason 0x06 (x)\n', '--table', tpath)
    check(groups and groups[0]['unit'] is None, 'unit: none for a segment the table lacks',
          str(groups))

    # Exit statuses.
    rc, _, err = explain('', '--no-table', os.path.join(tmp, 'no-such-log'))
    check(rc == 2 and 'no-such-log' in err, 'exit 2: unreadable LOG', err)
    rc, _, err = explain('', '--table', os.path.join(tmp, 'no-such-table'))
    check(rc == 2 and 'no-such-table' in err, 'exit 2: unreadable --table', err)
    notdmar = os.path.join(tmp, 'notdmar.dat')
    with open(notdmar, 'wb') as f:
        f.write(b'APIC' + bytes(60))
    rc, _, err = explain('', '--table', notdmar)
    check(rc == 2 and 'not an ACPI DMAR table' in err, 'exit 2: --table not a DMAR table', err)
    for bad in (['--frobnicate'], ['--table'], ['a.log', 'b.log'], ['--no-table', '--table',
                                                                     tpath]):
        rc, _, err = explain('', *bad)
        check(rc == 2 and 'usage' in err, 'exit 2: usage %s' % bad, err)
    logf = os.path.join(tmp, 'kern.log')
    with open(logf, 'w') as f:
        f.write(by_id['sriov286-repeat']['input'])
    rc, groups, _ = explain_json('', '--no-table', logf)
    check(rc == 0 and groups and groups[0]['count'] == 3, 'LOG file argument is read',
          str(groups))


def check_reason_table():
    """The library's fault-reason table, as `dmarctl fault-reason` shows it: every code
    Linux (dmar.c) and QEMU (VTD_FR_*) name is known with the right family, the gaps
    between the specification's groups are reserved."""
    def show(code):
        out = subprocess.run([DMARCTL, 'fault-reason', hex(code)], capture_output=True,
                             text=True).stdout
        kind, text = out.split(': ', 1)
        return kind.split('(', 1)[1].rstrip(')'), text.strip()
    known = ([(c, 'DMA remapping') for c in range(0x1, 0xe)] +
             [(c, 'interrupt remapping') for c in range(0x20, 0x28)] +
             [(c, 'scalable-mode DMA remapping') for c in
              [0x30, 0x31, 0x32, 0x38, 0x39, 0x3a] + list(range(0x40, 0x49)) +
              [0x50, 0x51, 0x52] + list(range(0x58, 0x5e)) + list(range(0x70, 0x7d)) +
              list(range(0x80, 0x88)) + [0x90, 0x91]])
    texts = set()
    for code, kind in known:
        k, text = show(code)
        check(k == kind and text != 'reserved/unknown', 'fault reason 0x%02x is %s' %
              (code, kind), '%s: %s' % (k, text))
        texts.add(text)
    check(len(texts) == len(known), 'fault reasons: every code has its own text',
          '%d texts for %d codes' % (len(texts), len(known)))
    for code in (0x0, 0x0f, 0x1f, 0x28, 0x33, 0x37, 0x3b, 0x49, 0x4f, 0x53, 0x5e, 0x60, 0x6f,
                 0x7d, 0x88, 0x8f, 0x92, 0xff):
        k, text = show(code)
        check(k == 'unknown' and text == 'reserved/unknown',
              'fault reason 0x%02x is reserved' % code, '%s: %s' % (k, text))


def main():
    global DMARCTL, TABLES
    args = sys.argv[1:]
    TABLES = '--tables' in args
    args = [a for a in args if a != '--tables']
    if not args:
        print(__doc__)
        return 2
    DMARCTL = args[0]
    corpus = args[1] if len(args) > 1 else ''
    rows = load_fixture()
    if TABLES:
        # Only the rows' checks against real-table corpus files: exit 77 (skipped)
        # without the corpus.
        if not corpus or not os.path.isdir(corpus):
            print('skipped: no real-table corpus at %r' % corpus)
            return 77
        for row in rows:
            check_row(row, corpus)
        check(passed > 0, 'fixture rows name corpus tables', '')
    else:
        check(len(rows) >= 15, 'fixture has its rows', str(len(rows)))
        for row in rows:
            check_row(row, '')
        check_reason_table()
        with tempfile.TemporaryDirectory() as tmp:
            check_multiline(rows, tmp)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
