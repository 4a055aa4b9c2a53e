#!/usr/bin/env bash
# Checks that Cargo.toml's rust-version (the minimum supported Rust) is consistent with the
# locked dependencies: none of them, dev-dependencies, build-dependencies and every
# feature's included, may declare a newer `rust-version` than ztick does. No other toolchain
# can be installed here, so this reads what the dependencies declare (`cargo metadata`)
# instead of building with that compiler.
#
#   scripts/msrv.sh        # CI runs it (.ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked --all-features | python3 -c '
import json, sys

def version(v):
    parts = [int(p) for p in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

meta = json.load(sys.stdin)
used = {n["id"] for n in meta["resolve"]["nodes"]}
ours = next(p for p in meta["packages"] if p["id"] in meta["workspace_members"])
msrv = ours.get("rust_version")
if not msrv:
    sys.exit("msrv: Cargo.toml states no rust-version")
newer = sorted(
    ((version(p["rust_version"]), p["name"], p["version"])
     for p in meta["packages"]
     if p["id"] in used and p["id"] != ours["id"] and p.get("rust_version")
     and version(p["rust_version"]) > version(msrv)),
    reverse=True,
)
if newer:
    names = ", ".join("%s %s (%s)" % (n, v, ".".join(map(str, r))) for r, n, v in newer)
    sys.exit("msrv: rust-version %s is older than these dependencies need: %s; raise it in "
             "Cargo.toml (and deploy/Dockerfile), or pin older versions of them" % (msrv, names))
print("msrv: rust-version %s covers every locked dependency" % msrv)
'
