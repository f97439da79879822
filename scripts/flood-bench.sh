#!/usr/bin/env bash
# The flood bench (not for CI): a release dungeongate with its default limits (nothing exempt)
# on loopback, then `loadtest flood` once per hostile kind — N hostile connections from many
# 127.1.x.y addresses next to a legitimate login loop from 127.0.0.x — bounded in time.
#
#   scripts/flood-bench.sh                 # 5000 connections of each kind, 20 s each
#   CONNECTIONS=1000 SECONDS_EACH=10 scripts/flood-bench.sh
#   EXTRA_LIMITS='max_startups: "1000:30:8000"' scripts/flood-bench.sh
#   KINDS=never-reading scripts/flood-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS="${CONNECTIONS:-5000}"
SECONDS_EACH="${SECONDS_EACH:-20}"
cargo build --release -p dungeongate -p loadtest --bins
DG=target/release/dungeongate
LT=target/release/loadtest
WORK="$(mktemp -d -t flood-XXXXXX)"
chmod 755 "$WORK"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT="$(free_port)"
HTTP="$(free_port)"
cat > "$WORK/config.yaml" <<YAML
server_id: flood
data_dir: "$WORK/data"
ssh: { listen: "127.0.0.1:$PORT" }
http: { listen: "127.0.0.1:$HTTP" }
limits: { max_connections: 20000, ${EXTRA_LIMITS:-} }
games:
  - { id: cat, name: "Cat", command: /bin/cat, concurrent_per_account: true }
log: { format: text, level: warn }
YAML
ssh-keygen -q -t ed25519 -N "" -f "$WORK/client" >/dev/null
echo "flood-password-1" | "$DG" user add legit --config "$WORK/config.yaml" >/dev/null
"$DG" user key add legit "$WORK/client.pub" --config "$WORK/config.yaml" >/dev/null
"$DG" serve --config "$WORK/config.yaml" >"$WORK/stdout" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q "ssh listening" "$WORK/stdout" 2>/dev/null && break
    sleep 0.1
done
for kind in ${KINDS:-silent never-reading guess}; do
    "$LT" flood --port "$PORT" --user legit --key "$WORK/client" --server-pid "$SERVER_PID" \
        --label dungeongate --sources 50 --hostile "$kind" --connections "$CONNECTIONS" \
        --duration "$SECONDS_EACH" --metrics-port "$HTTP"
    # Let penalties and backoffs from one kind run out before the next.
    sleep 5
done
