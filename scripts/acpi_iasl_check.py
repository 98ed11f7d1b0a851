#!/usr/bin/env python3
"""acpi_iasl_check.py DMARCTL CORPUS_DIR

Cross-checks `dmarctl table --json` against `iasl -d` (ACPICA's disassembler) for every
*.bin table in CORPUS_DIR: structure offsets and types, DRHD flags/segment/base, RMRR
segment/base/limit, ATSR flags/segment, RHSA base/domain, ANDD device number, and every
device scope's type, enumeration id, start bus and path. iasl versions that do not know
SATC/SIDP stop there; the comparison covers the structures before that point.
Exit 0 all match, 1 a mismatch, 77 (skip) without the corpus or iasl.
"""
import glob, json, os, re, shutil, subprocess, sys, tempfile

LINE = re.compile(r'^\[([0-9A-Fa-f]+)h\s+\d+\s+\d+\]\s+(.+?)\s+:\s+(.*)$')
STRUCT_FIELDS = {
    'Flags': 'flags', 'PCI Segment Number': 'segment', 'Register Base Address': 'address',
    'Base Address': 'base', 'End Address (limit)': 'limit', 'Device Number': 'device',
    'Proximity Domain': 'proximity_domain',
}


def parse_dsl(text):
    structs, cur, scope = [], None, None
    for raw in text.splitlines():
        if raw.startswith('Raw Table Data') or 'Unknown DMAR subtable' in raw:
            break
        m = LINE.match(raw.strip())
        if not m:
            continue
        off, name, val = int(m.group(1), 16), m.group(2), m.group(3)
        if name == 'Subtable Type':
            if 'Unknown' in val:
                break
            cur = {'offset': off, 'type_id': int(val.split()[0], 16), 'scopes': []}
            structs.append(cur)
            scope = None
        elif cur is None:
            continue
        elif name == 'Device Scope Type':
            scope = {'type_id': int(val.split()[0], 16), 'offset': off, 'path': []}
            cur['scopes'].append(scope)
        elif scope is not None and name == 'Enumeration ID':
            scope['enumeration_id'] = int(val, 16)
        elif scope is not None and name == 'PCI Bus Number':
            scope['start_bus'] = int(val, 16)
        elif scope is not None and name == 'PCI Path':
            dev, fn = val.split(',')
            scope['path'].append((int(dev, 16), int(fn, 16)))
        elif scope is None and name in STRUCT_FIELDS:
            cur[STRUCT_FIELDS[name]] = int(val.split()[0], 16)
    return structs


def num(v):
    return int(v, 16) if isinstance(v, str) else v


def compare(name, ours, theirs):
    errs = []
    known = []
    for s in ours['structures']:
        if s['type_id'] >= 5:
            break
        known.append(s)
    if len(known) != len(theirs):
        return ['%s: %d structures before SATC/SIDP, iasl has %d' % (name, len(known), len(theirs))]
    for a, b in zip(known, theirs):
        where = '%s@0x%x' % (name, b['offset'])
        if a['offset'] != b['offset'] or a['type_id'] != b['type_id']:
            errs.append('%s: structure type/offset %s/%s vs iasl %s/%s' %
                        (where, a['type_id'], a['offset'], b['type_id'], b['offset']))
            continue
        if b['type_id'] == 3 and 'base' in b:   # iasl names the RHSA base "Base Address"
            b['address'] = b.pop('base')
        for k in ('flags', 'segment', 'address', 'base', 'limit', 'device', 'proximity_domain'):
            if k in b and num(a.get(k)) != b[k]:
                errs.append('%s: %s %r vs iasl 0x%x' % (where, k, a.get(k), b[k]))
        sa, sb = a.get('scopes', []), b['scopes']
        if len(sa) != len(sb):
            errs.append('%s: %d scopes vs iasl %d' % (where, len(sa), len(sb)))
            continue
        for x, y in zip(sa, sb):
            px = [(p['device'], p['function']) for p in x['path']]
            if (x['type_id'], x['enumeration_id'], x['start_bus'], px, x['offset']) != \
               (y['type_id'], y['enumeration_id'], y['start_bus'], y['path'], y['offset']):
                errs.append('%s: scope %r vs iasl %r' % (where, x, y))
    return errs


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    dmarctl, corpus = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(corpus, '*.bin')))
    if not files or not shutil.which('iasl'):
        print('skip: no corpus at %s or no iasl' % corpus)
        return 77
    failures, compared, structs, scopes = [], 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            name = os.path.basename(f)
            res = subprocess.run([dmarctl, 'table', '--json', f], capture_output=True, text=True)
            if res.returncode != 0:
                failures.append('%s: dmarctl exit %d: %s' % (name, res.returncode, res.stderr.strip()))
                continue
            ours = json.loads(res.stdout)
            dat = os.path.join(tmp, 'DMAR.dat')
            dsl = os.path.join(tmp, 'DMAR.dsl')
            shutil.copyfile(f, dat)
            if os.path.exists(dsl):
                os.remove(dsl)
            subprocess.run(['iasl', '-d', 'DMAR.dat'], cwd=tmp, capture_output=True)
            if not os.path.exists(dsl):
                failures.append('%s: iasl produced no output' % name)
                continue
            with open(dsl, errors='replace') as fh:
                theirs = parse_dsl(fh.read())
            errs = compare(name, ours, theirs)
            failures += errs
            compared += 1
            structs += len(theirs)
            scopes += sum(len(s['scopes']) for s in theirs)
    for e in failures[:40]:
        print('MISMATCH', e)
    print('%d tables compared with iasl: %d structures, %d scopes; %d mismatches' %
          (compared, structs, scopes, len(failures)))
    return 1 if failures or compared != len(files) else 0


if __name__ == '__main__':
    sys.exit(main())
