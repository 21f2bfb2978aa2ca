#!/usr/bin/env bash
# Makes room beside a model in a device call: the device tool carries the working tree and the carried folders, 64 MiB
# in all, and tests/data, samples/tiny-llama and docs/data are most of the tree (37 of 43 MB in session 20). `hide`
# moves them into the git-ignored .gpu/hidden (the tree then travels at ~6 MB, so small-qwen2's 35.7 MB of xz and the
# 22 MB test runner fit beside it); `restore` moves them back. Run `restore` right after the call: until then `git
# status` shows them deleted. A call whose command reads samples/tiny-llama must not run hidden.
#   tools/gpu-slim-tree.sh hide|restore
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hidden="$root/.gpu/hidden"
folders=(tests/data samples/tiny-llama docs/data)
case "${1:-}" in
  hide)
    [ -e "$hidden" ] && { echo "gpu-slim-tree: $hidden exists: restore first" >&2; exit 1; }
    for f in "${folders[@]}"; do mkdir -p "$hidden/$(dirname "$f")"; mv "$root/$f" "$hidden/$f"; done
    echo "hidden: ${folders[*]} (tools/gpu-slim-tree.sh restore puts them back)";;
  restore)
    [ -d "$hidden" ] || { echo "gpu-slim-tree: nothing hidden" >&2; exit 1; }
    for f in "${folders[@]}"; do
      [ -e "$hidden/$f" ] || continue
      [ -e "$root/$f" ] && { echo "gpu-slim-tree: $f exists in the tree; left $hidden/$f as it is" >&2; exit 1; }
      mv "$hidden/$f" "$root/$f"
    done
    rm -rf "$hidden"
    echo "restored: ${folders[*]}";;
  *) echo "usage: tools/gpu-slim-tree.sh hide|restore" >&2; exit 2;;
esac
