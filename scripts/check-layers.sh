#!/usr/bin/env bash
# Each module includes only the modules below it (STYLE.md B.2):
#   core <- config, model <- store, map, http <- connectors <- engine <- daemon <- cli
# sql (SQL tables as systems) sits beside store and http but needs only core.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 - <<'PY'
import glob, re, sys
allowed = {
    'core': set(),
    'config': {'core'},
    'model': {'core', 'config'},
    'store': {'core', 'config', 'model'},
    'map': {'core', 'config', 'model'},
    'http': {'core', 'config', 'model'},
    'sql': {'core'},
    'connectors': {'core', 'config', 'model', 'store', 'map', 'http', 'sql'},
    'engine': {'core', 'config', 'model', 'store', 'map', 'http', 'sql', 'connectors'},
    'daemon': {'core', 'config', 'model', 'store', 'map', 'http', 'sql', 'connectors', 'engine'},
    'cli': {'core', 'config', 'model', 'store', 'map', 'http', 'sql', 'connectors', 'engine', 'daemon'},
}
bad = []
for path in sorted(glob.glob('src/*/*.[ch]')):
    mod = path.split('/')[1]
    for n, line in enumerate(open(path), 1):
        m = re.match(r'#include "([a-z]+)/([a-z_]+)\.h"', line)
        if not m:
            continue
        dep, hdr = m.group(1), m.group(2)
        if dep == mod:
            continue
        if dep not in allowed.get(mod, set()):
            bad.append('%s:%d: %s may not include %s/' % (path, n, mod, dep))
        elif hdr.endswith('_int'):
            bad.append('%s:%d: %s/%s.h is internal to %s/' % (path, n, dep, hdr, dep))
if bad:
    print('check-layers: forbidden includes:')
    print('\n'.join(bad))
    sys.exit(1)
PY
