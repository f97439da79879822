#!/usr/bin/env bash
# Build every cargo-fuzz target of fuzz/ and run each for N seconds (default 20, first
# argument). Prints one summary line per target; exits non-zero if any target crashed,
# leaked, timed out or failed to build. Crash inputs are kept under fuzz/artifacts/<target>/.
#
# Works on the stable toolchain: cargo-fuzz passes `-Zsanitizer=address`, which stable rustc
# accepts with RUSTC_BOOTSTRAP=1 (see fuzz/README.md). Environment:
#   FUZZ_SANITIZER=none   build without AddressSanitizer (faster; libFuzzer still works)
#   FUZZ_NO_SEEDS=1       do not generate seed corpora when fuzz/corpus/<target> is empty
#   FUZZ_ARGS="..."       extra libFuzzer flags for every target (e.g. -jobs=2)
set -euo pipefail

secs="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

sanitizer="${FUZZ_SANITIZER:-address}"
if ! cargo fuzz build --sanitizer "$sanitizer" >build.log 2>&1; then
    tail -n 40 build.log >&2
    echo "fuzz-smoke: BUILD FAILED (full log: fuzz/build.log)"
    exit 1
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
bindir="target/$triple/release"
mapfile -t targets < <(cargo fuzz list)

# Seeds: small valid sessions, packets and messages to start from (never committed).
need_seeds=0
for t in "${targets[@]}"; do
    if [ -z "$(ls -A "corpus/$t" 2>/dev/null)" ]; then need_seeds=1; fi
done
if [ "$need_seeds" = 1 ] && [ -z "${FUZZ_NO_SEEDS:-}" ]; then
    # A plain (uninstrumented) build: RUSTC_BOOTSTRAP does not change its flags.
    if ! cargo run --quiet --example gen_corpus -- corpus >seed.log 2>&1; then
        tail -n 20 seed.log >&2
        echo "fuzz-smoke: seed generation failed; fuzzing from empty corpora" >&2
    fi
fi

failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    set +e
    "$bindir/$t" "corpus/$t" \
        -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
    if [ "$rc" = 0 ]; then
        summary+=("fuzz $t: ok, ${runs:-?} runs in ${secs}s, corpus $(ls "corpus/$t" | wc -l) files")
    else
        failed=1
        artifact="$(grep -o "artifacts/$t/[a-z]*-[0-9a-f]*" "$log" | tail -n 1)"
        reason="$(grep -m1 -E "panicked at|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY:" "$log" || true)"
        summary+=("fuzz $t: FAILED (exit $rc) ${reason} input=${artifact:-?} log=fuzz/$log")
        tail -n 30 "$log" >&2
    fi
done

printf '%s\n' "${summary[@]}"
exit "$failed"
