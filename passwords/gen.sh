#!/usr/bin/env bash
# Regenerates common.txt.gz and LICENSE-zxcvbn from the npm package zxcvbn.
# Run from anywhere: bash passwords/gen.sh
# Needs node and npm; installs into a temporary directory, never into the project.
set -euo pipefail

VERSION="${ZXCVBN_VERSION:-4.4.2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d /tmp/zxcvbn-gen.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm init -y >/dev/null 2>&1
npm install --no-audit --no-fund --silent "zxcvbn@${VERSION}" >/dev/null

# The "passwords" frequency list, most frequent first; lowercased, and each
# entry kept only at its first (most frequent) position.
node -e '
const list = require("zxcvbn/lib/frequency_lists.js").passwords;
const seen = new Set();
const out = [];
for (const raw of list) {
  const w = raw.trim().toLowerCase();
  if (w === "" || seen.has(w)) continue;
  seen.add(w);
  out.push(w);
}
process.stdout.write(out.join("\n") + "\n");
' > common.txt

gzip -n -9 -c common.txt > "$here/common.txt.gz"
cp node_modules/zxcvbn/LICENSE.txt "$here/LICENSE-zxcvbn"
echo "wrote $(wc -l < common.txt) passwords to $here/common.txt.gz (zxcvbn@${VERSION})"
