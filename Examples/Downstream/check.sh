#!/usr/bin/env bash
# Builds Examples/Downstream against QuantKit as a *versioned* dependency (`from: "0.1.0"`), which is how users
# depend on it and the only mode in which SwiftPM rejects unsafeFlags.
#
# The committed HEAD is not what we want to check in a dirty work tree, so the tree itself is snapshotted: every
# tracked file that still exists plus untracked, non-ignored files are copied into a fresh git repo, committed and
# tagged 0.1.0. Nothing outside a temporary directory is touched. Set KEEP_TMP=1 to keep it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quantkit-downstream.XXXXXX")
if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "check.sh: keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

echo "== snapshot of $root -> $tmp/QuantKit (tagged 0.1.0)"
mkdir -p "$tmp/QuantKit"
(
    cd "$root"
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            # --cached lists files deleted in the work tree too; skip them.
            if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
        done |
        tar --null -T - -cf -
) | tar -C "$tmp/QuantKit" -xf -
git -C "$tmp/QuantKit" init -q
git -C "$tmp/QuantKit" add -A
git -C "$tmp/QuantKit" -c user.name=quantkit-check -c user.email=check@quantkit.invalid \
    -c commit.gpgsign=false commit -q -m "snapshot for the downstream check"
git -C "$tmp/QuantKit" -c tag.gpgsign=false tag 0.1.0

echo "== build Examples/Downstream against file://$tmp/QuantKit from: 0.1.0"
mkdir -p "$tmp/Downstream"
tar -C "$here" --exclude=./.build --exclude='./.build-*' --exclude=./Package.resolved -cf - . | tar -C "$tmp/Downstream" -xf -
export QUANTKIT_PACKAGE_URL="file://$tmp/QuantKit"
swift build --package-path "$tmp/Downstream" --scratch-path "$tmp/.build"
bin=$(swift build --package-path "$tmp/Downstream" --scratch-path "$tmp/.build" --show-bin-path)

echo "== run"
"$bin/Downstream"
