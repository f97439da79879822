#!/usr/bin/env bash
# CI smoke test of the load harness against dungeongate only: every scenario runs for a few
# seconds through the standalone subcommands (a server started here, key auth) and once more
# through `compare`. Any failed operation, missing result or missing output file fails the run.
#
#   scripts/loadtest-smoke.sh            # debug build (shares the test build)
#   PROFILE=release scripts/loadtest-smoke.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-debug}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
flag=()
[ "$PROFILE" = release ] && flag=(--release)

cargo build "${flag[@]}" -p dungeongate -p loadtest --bins
BIN="$TARGET_DIR/$PROFILE"
DG="$BIN/dungeongate"
LT="$BIN/loadtest"

WORK="$(mktemp -d -t lt-smoke-XXXXXX)"
chmod 755 "$WORK"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT="$(free_port)"
HTTP="$(free_port)"
cat > "$WORK/config.yaml" <<YAML
server_id: lt-smoke
data_dir: "$WORK/data"
cores: 2
ssh: { listen: "127.0.0.1:$PORT" }
http: { listen: "127.0.0.1:$HTTP" }
password: { memory_kib: 64, iterations: 1, parallelism: 1, max_concurrent: 2 }
# One client on loopback: per-source limits and MaxStartups would measure themselves.
limits: { exempt: ["127.0.0.0/8", "::1"] }
# The bench account runs many of these at once; they keep no save.
games:
  - { id: cat, name: "Cat", command: /bin/cat, concurrent_per_account: true }
  - { id: bulk, name: "Bulk", command: /bin/cat, args: ["/dev/zero"], concurrent_per_account: true }
log: { format: text, level: warn }
YAML
ssh-keygen -q -t ed25519 -N "" -f "$WORK/client" >/dev/null
echo "smoke-password-1" | "$DG" user add smoke --config "$WORK/config.yaml" >/dev/null
"$DG" user key add smoke "$WORK/client.pub" --config "$WORK/config.yaml" >/dev/null

"$DG" serve --config "$WORK/config.yaml" >"$WORK/stdout" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q "ssh listening on 127.0.0.1:$PORT" "$WORK/stdout" 2>/dev/null && break
    sleep 0.1
done
grep -q "ssh listening on 127.0.0.1:$PORT" "$WORK/stdout" || {
    echo "dungeongate did not start"; cat "$WORK/server.log"; exit 1; }

JSON="$WORK/results.jsonl"
common=(--port "$PORT" --user smoke --key "$WORK/client" --server-pid "$SERVER_PID"
        --label dungeongate --json "$JSON" --strict)
run() { echo "+ loadtest $*"; "$LT" "$@"; }
run storm "${common[@]}" --concurrency 4 --duration 2
run idle "${common[@]}" --sessions 20 --hold 1
run echo "${common[@]}" --sessions 10 --duration 2
run throughput "${common[@]}" --duration 1
# Password auth too (the same account).
LOADTEST_PASSWORD=smoke-password-1 run storm --port "$PORT" --user smoke --strict --json "$JSON" \
    --concurrency 2 --count 20 --duration 2
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

run compare --quick --servers dungeongate --dungeongate "$DG" --storm-seconds 2 \
    --idle-sessions 20 --echo-sessions 10 --echo-seconds 2 \
    --json "$JSON" --svg "$WORK/latency.svg" --strict

lines="$(wc -l < "$JSON")"
[ "$lines" -eq 9 ] || { echo "expected 9 JSON results, got $lines"; exit 1; }
grep -q "<svg" "$WORK/latency.svg" || { echo "no SVG chart"; exit 1; }
echo "loadtest smoke: ok ($lines results)"
