#!/usr/bin/env bash
# Runs deploy/compose.yaml's topology without Docker: one publisher and two subscribers of
# `ztick fanout`, each in its own network namespace (a host of its own), joined by a bridge
# in a fourth, configured by the same env files (deploy/ztick.env, publisher.env,
# subscriber.env) and the same command lines as the compose file. The name `publisher`
# resolves inside the namespaces as compose's service name does (a hosts file per namespace,
# which `ip netns exec` mounts over /etc/hosts). Then it checks both subscribers' reports:
# the accounting closes (received + repaired + missing = published), the stream completed,
# the latency figures are there.
#
#   scripts/deploy-netns.sh            # as root; CI runs it (.ci/run)
#   ZTICK=target/release/ztick scripts/deploy-netns.sh
#
# Where namespaces cannot be created (not root, no iproute2, no CAP_SYS_ADMIN) it prints a
# SKIPPED line and exits 0. Every name is unique to this run (the process id), addresses are
# 10.x inside the namespaces only, every wait is bounded, and everything it made is removed
# on exit, failure or interrupt.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "deploy-netns: SKIPPED: $*"
    exit 0
}
fail() {
    echo "deploy-netns: FAILED: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || skip "not root: network namespaces need root (CI runs this script as root)"
command -v ip >/dev/null 2>&1 || skip "no iproute2 (the ip command)"

tag="zd$(printf '%x' $$)"
net=$(( $$ % 200 + 20 ))
prefix="10.232.${net}"
switch="${tag}sw"
namespaces=()
pids=()
work=$(mktemp -d)

cleanup() {
    local pid ns
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    for ns in "${namespaces[@]:-}"; do
        [ -n "$ns" ] || continue
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "/etc/netns/$ns"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! err=$(ip netns add "$switch" 2>&1); then
    skip "cannot create network namespaces here ($err)"
fi
namespaces+=("$switch")
ip -n "$switch" link add br0 type bridge
ip -n "$switch" link set br0 up

# host name -> address; the publisher is .1, as compose's `publisher` service.
declare -A addr=([publisher]="${prefix}.1" [subscriber-a]="${prefix}.2" [subscriber-b]="${prefix}.3")
host_ns() { echo "${tag}${1#subscriber-}"; }
for host in publisher subscriber-a subscriber-b; do
    ns=$(host_ns "$host")
    ip netns add "$ns"
    namespaces+=("$ns")
    inner="e${host: -1}"
    outer="s${tag}${host: -1}"
    ip -n "$ns" link add "$inner" type veth peer name "$outer" netns "$switch"
    ip -n "$switch" link set "$outer" master br0
    ip -n "$switch" link set "$outer" up
    ip -n "$ns" addr add "${addr[$host]}/24" dev "$inner"
    ip -n "$ns" link set "$inner" up
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s publisher\n%s %s\n' "${addr[publisher]}" "${addr[$host]}" "$host" \
        >"/etc/netns/$ns/hosts"
done

ZTICK=${ZTICK:-target/debug/ztick}
if [ ! -x "$ZTICK" ]; then
    cargo build --quiet --bin ztick
fi
ZTICK=$(realpath "$ZTICK")

# The env files' KEY=VALUE lines, as compose's env_file reads them.
env_of() { grep -hEv '^[[:space:]]*(#|$)' "$@"; }
# Runs `ztick fanout ARGS` on HOST with the env files, its stdout and stderr to files.
start() {
    local host=$1 envs=$2
    shift 2
    local -a vars
    mapfile -t vars < <(env_of deploy/ztick.env "deploy/$envs")
    timeout 120 ip netns exec "$(host_ns "$host")" env -i PATH="$PATH" "${vars[@]}" "$ZTICK" fanout "$@" \
        >"$work/$host.json" 2>"$work/$host.log" &
    pids+=($!)
}

echo "deploy-netns: publisher ${addr[publisher]}, subscribers ${addr[subscriber-a]} and ${addr[subscriber-b]} on bridge $switch"
# compose.yaml's command lines, with a shorter, lighter stream.
start publisher publisher.env --role pub --subscribers 2 --snapshot-bind tcp://0.0.0.0:5557 \
    --rate 20000 --duration 3 --json
start subscriber-a subscriber.env --role sub --snapshot tcp://publisher:5557 --json
start subscriber-b subscriber.env --role sub --snapshot tcp://publisher:5557 --json

status=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        status=1
    fi
    pids[$i]=""
done
for host in publisher subscriber-a subscriber-b; do
    echo "--- $host: stderr"
    sed 's/^/    /' "$work/$host.log"
done
[ "$status" = 0 ] || fail "a process failed (exit codes above; stdout in the reports below)
$(cat "$work"/*.json)"

# The checks read the JSON with grep: no jq or python needed.
num() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }
published=$(num published "$work/publisher.json")
[ -n "$published" ] && [ "$published" -gt 0 ] || fail "the publisher published nothing: $(cat "$work/publisher.json")"
connections=$(num connections "$work/publisher.json")
echo "deploy-netns: publisher: $published ticks published; $connections subscriber connections seen"
for host in subscriber-a subscriber-b; do
    r="$work/$host.json"
    grep -q '"accounting_closes":true' "$r" || fail "$host: the accounting does not close: $(cat "$r")"
    grep -q '"outcome":"complete"' "$r" || fail "$host: the stream did not complete: $(cat "$r")"
    received=$(num received "$r")
    repaired=$(num repaired "$r")
    missing=$(num missing "$r")
    [ $((received + repaired + missing)) = "$published" ] ||
        fail "$host: received $received + repaired $repaired + missing $missing != published $published"
    latency=$(grep -o '"latency_ns":{[^}]*}' "$r" | head -1)
    count=$(echo "$latency" | grep -o '"count":[0-9]*' | cut -d: -f2)
    p50=$(echo "$latency" | grep -o '"p50":[0-9]*' | cut -d: -f2)
    p99=$(echo "$latency" | grep -o '"p99":[0-9]*' | cut -d: -f2)
    [ -n "$count" ] && [ "$count" -gt 0 ] && [ -n "$p50" ] && [ -n "$p99" ] || fail "$host: no latency figures: $r"
    echo "deploy-netns: $host: received $received, repaired $repaired, missing $missing of $published;" \
        "latency p50 $((p50 / 1000)) us, p99 $((p99 / 1000)) us over $count ticks"
done
echo "deploy-netns: OK: both subscribers' accounting closes, with latency figures"
