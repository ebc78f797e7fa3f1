#!/usr/bin/env bash
# Every function declared in a src/*/*.h has a comment directly above it
# (or belongs to a group whose first declaration has one).
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 - <<'PY'
import glob, re, sys
bad = []
decl = re.compile(r'^(?:MUST_CHECK\s+)?(?:const\s+)?(?:struct\s+|enum\s+)?[a-z_][a-z0-9_]*\s*\**\s*\**([a-z_][a-z0-9_]*)\(')
for path in sorted(glob.glob('src/*/*.h')):
    lines = open(path).read().split('\n')
    for i, line in enumerate(lines):
        m = decl.match(line)
        if not m or line.startswith('typedef') or line.startswith('#'):
            continue
        j = i - 1
        # a declaration continues a group: look up past other declarations
        while j >= 0 and (decl.match(lines[j]) or lines[j].startswith(' ') and lines[j].strip().endswith(';')):
            j -= 1
        if j < 0 or not (lines[j].rstrip().endswith('*/')):
            bad.append('%s:%d: %s' % (path, i + 1, m.group(1)))
if bad:
    print('check-headers: declarations without a contract comment:')
    print('\n'.join(bad))
    sys.exit(1)
PY
