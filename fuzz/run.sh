#!/usr/bin/env bash
# Runs every fuzz target (or those named as arguments) for a bounded time each.
#
#   fuzz/run.sh                      # every target, 30 s each
#   FUZZ_SECONDS=600 fuzz/run.sh cursor graphql_request
#
# Knobs: FUZZ_SECONDS (per target, default 30), FUZZ_RSS_MB (libFuzzer -rss_limit_mb,
# default 2048), FUZZ_TIMEOUT (seconds one input may take before it counts as a hang,
# default 10), FUZZ_SANITIZER (address, the default, or none: about twice the executions a second, and
# the product has no unsafe code of its own).
#
# Needs the nightly toolchain (libFuzzer's instrumentation); installs cargo-fuzz when it
# is missing. Seeds are read from fuzz/corpus/<target>/ and never written: what a run
# learns goes to fuzz/target/corpus/<target>/ (kept between runs, not committed). A crash,
# panic, hang or out-of-memory stops the target, the script names the saved input
# (fuzz/artifacts/<target>/...) and exits 1 once every target has run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SECONDS:-30}"
rss_mb="${FUZZ_RSS_MB:-2048}"
timeout="${FUZZ_TIMEOUT:-10}"
sanitizer="${FUZZ_SANITIZER:-address}"
all_targets=(provider_file cursor webhook_signature graphql_request)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

# Provider files are tens of KB; the other inputs are small.
max_len() {
    case "$1" in
        provider_file) echo 65536 ;;
        graphql_request) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$root"
# The fuzz crate's lock file is committed: refuse to build if it is out of date.
cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
if [ ${#targets[@]} -eq 1 ]; then
    cargo +nightly fuzz build --sanitizer "$sanitizer" "${targets[0]}"
else
    cargo +nightly fuzz build --sanitizer "$sanitizer"
fi

failed=()
for t in "${targets[@]}"; do
    work="fuzz/target/corpus/$t"
    artifacts="fuzz/artifacts/$t/"
    mkdir -p "$work" "$artifacts"
    log="fuzz/target/$t.log"
    echo "== $t: ${seconds} s, seeds fuzz/corpus/$t, log $log"
    set +e
    cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout="$timeout" \
        -max_len="$(max_len "$t")" \
        -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' "$log" | sed 's/^/   /' || true
    if [ $status -ne 0 ]; then
        failed+=("$t")
        echo "   FAILED (exit $status):"
        grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" | head -5 | sed 's/^/   /' || true
        saved="$(grep -oE 'Test unit written to [^ ]+' "$log" | awk '{print $5}' | tail -1)"
        echo "   input saved to: ${saved:-(none; see $log)}"
        [ -n "$saved" ] && echo "   reproduce: cargo +nightly fuzz run $t $saved"
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
echo "no crash in: ${targets[*]}"
