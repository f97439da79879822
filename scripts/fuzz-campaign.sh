#!/usr/bin/env bash
# A long fuzz campaign (not for CI): each named target (default: all) runs for MINUTES
# (default 30) with AddressSanitizer, one after the other; a summary line per target goes to
# stdout and to fuzz/campaign-<date>.txt. Corpora grow in fuzz/corpus/<target> (not
# committed), crash inputs land in fuzz/artifacts/<target>/.
#
#   scripts/fuzz-campaign.sh 30                      # every target, 30 min each
#   scripts/fuzz-campaign.sh 30 lobby_input wire_msgs
set -euo pipefail
minutes="${1:-30}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
cargo fuzz build --sanitizer "${FUZZ_SANITIZER:-address}" >build.log 2>&1 || {
    tail -n 40 build.log >&2; exit 1; }
triple="$(rustc -vV | sed -n 's/^host: //p')"
bindir="target/$triple/release"
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
report="campaign-$(date -u +%Y%m%d-%H%M).txt"
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/campaign.log"
    set +e
    "$bindir/$t" "corpus/$t" -max_total_time=$((minutes * 60)) -timeout=25 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)"
    line="$t: exit $rc, ${runs:-?} runs in ${minutes} min, ${cov:-cov: ?}, corpus $(ls "corpus/$t" | wc -l) files"
    [ "$rc" = 0 ] || { failed=1; line="$line, FAILED: $(grep -m1 -E 'panicked at|ERROR:' "$log")"; }
    echo "$line" | tee -a "$report"
done
exit "$failed"
