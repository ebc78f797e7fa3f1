#!/usr/bin/env bash
# No call of a banned function under src/ (STYLE.md B.13). Comments and
# string literals are blanked first, so prose that says "system (" is fine.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 - <<'PY'
import glob, re, sys
banned = ('gets strcpy strcat sprintf vsprintf strtok atoi atol atof strerror localtime gmtime '
          'asctime ctime rand system popen alloca signal').split()
call = re.compile(r'(?<![A-Za-z0-9_.>])(' + '|'.join(banned) + r')\s*\(')
strip = re.compile(r'/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
bad = []
for path in sorted(glob.glob('src/**/*.[ch]', recursive=True)):
    text = open(path).read()
    text = strip.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text)
    for n, line in enumerate(text.split('\n'), 1):
        m = call.search(line)
        if m:
            bad.append('%s:%d: %s()' % (path, n, m.group(1)))
if bad:
    print('check-banned: banned calls:')
    print('\n'.join(bad))
    sys.exit(1)
PY
