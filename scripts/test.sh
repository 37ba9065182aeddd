#!/usr/bin/env bash
# Builds parley and runs its tests. By default what a newcomer runs (about
# 15 minutes on a fresh 2-core machine): the CMake preset `default` (GCC)
# configured, built and run with ctest, then the same tests through meson.
# With --full, the whole matrix CI runs (.ci/run): default, asan
# (AddressSanitizer + UBSan, and the fuzz targets' corpus replay) and tsan
# (ThreadSanitizer), then meson. The sanitizer steps build with clang, so
# clang's warnings are errors in CI too; the `clang` step (clang at -O2) is
# left out of --full to keep CI near 45 minutes on two cores, and runs when
# named. Prints a summary; exits nonzero if anything failed.
#
#   scripts/test.sh                      # default preset and meson
#   scripts/test.sh --full               # every step, as CI
#   scripts/test.sh default asan         # only these steps
#   scripts/test.sh clang                # clang at -O2 (not in --full)
#   PARLEY_JOBS=4 scripts/test.sh        # build parallelism (default: nproc)
#
# For each step it prints one line
#   "== <step>: N passed, M failed, S skipped (T s, C cpu-s)",
# taken from ctest's (or meson's) own count: a test whose prerequisite is
# missing here (redis-server, OpenSSL, a tool) is skipped, never counted as
# passed, and the next line names the skipped tests. A step that fails to
# configure or build counts as one failure. .ci/run adds these lines up
# (the indented copies in the final summary are not counted again).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

steps=()
deps="test"
for arg in "$@"; do
  case $arg in
    --full) steps+=(default asan tsan meson); deps=full ;;
    default|meson) steps+=("$arg") ;;
    clang|asan|tsan) steps+=("$arg"); deps=full ;;
    *) echo "test.sh: unknown step '$arg' (--full, default, clang, asan, tsan, meson)" >&2; exit 2 ;;
  esac
done
[ ${#steps[@]} -gt 0 ] || steps=(default meson)

scripts/install-deps.sh "$deps" || exit 1

# The Node test peers (tests/web: ws, puppeteer-core), pinned by its
# package-lock.json. Without npm or the registry their tests are skipped.
if command -v npm >/dev/null 2>&1; then
  if [ ! -f tests/web/node_modules/.package-lock.json ] ||
     [ tests/web/package-lock.json -nt tests/web/node_modules/.package-lock.json ]; then
    (cd tests/web && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ||
      echo "test.sh: npm ci in tests/web failed; the Node and browser tests will be skipped" >&2
  fi
fi

jobs=${PARLEY_JOBS:-$(nproc 2>/dev/null || echo 2)}
mkdir -p build
summary=()
failed_steps=0

# CPU seconds (user + system) used so far by finished child processes:
# with other builds on the machine, wall time alone says little.
tick=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_seconds() { awk -v t="$tick" '{printf "%d", ($16 + $17) / t}' /proc/$$/stat 2>/dev/null || echo 0; }
cpu_mark=$(cpu_seconds)

# report <step> <passed> <failed> <skipped> <seconds> [note] [skipped names]
report() {
  local cpu_now
  cpu_now=$(cpu_seconds)
  local line="== $1: $2 passed, $3 failed, $4 skipped ($5 s, $((cpu_now - cpu_mark)) cpu-s)${6:+ $6}"
  cpu_mark=$cpu_now
  echo "$line"
  summary+=("$line")
  if [ -n "${7:-}" ]; then
    echo "== $1 skipped: $7"
    summary+=("== $1 skipped: $7")
  fi
  [ "$3" -eq 0 ] || failed_steps=$((failed_steps + 1))
}

run_preset() {
  local preset=$1 start=$SECONDS log="build/$1.ctest.log"
  echo; echo "==== $preset: configure and build"
  if ! cmake --preset "$preset" || ! cmake --build --preset "$preset" --parallel "$jobs"; then
    report "$preset" 0 1 0 $((SECONDS - start)) "(configure or build failed)"
    return
  fi
  echo; echo "==== $preset: ctest"
  ctest --preset "$preset" 2>&1 | tee "$log"
  # ctest ends with "NN% tests passed, F tests failed out of T", where T
  # counts the skipped tests too, then lists them: "  N - name (Skipped)".
  local counts
  counts=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$log" | tail -n 1)
  if [ -z "$counts" ]; then
    report "$preset" 0 1 0 $((SECONDS - start)) "(ctest printed no result)"
    return
  fi
  local failed=${counts% *} total=${counts#* } skipped names
  names=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$log" | tr '\n' ' ')
  names=${names% }
  skipped=$(printf '%s' "$names" | wc -w)
  report "$preset" $((total - failed - skipped)) "$failed" "$skipped" $((SECONDS - start)) "" "$names"
}

run_meson() {
  local start=$SECONDS dir=build/meson log=build/meson.test.log
  echo; echo "==== meson: setup and compile"
  local setup=(meson setup "$dir" --werror)
  [ -f "$dir/build.ninja" ] && setup=(meson setup --reconfigure "$dir" --werror)
  if ! "${setup[@]}" || ! meson compile -C "$dir" -j "$jobs"; then
    report meson 0 1 0 $((SECONDS - start)) "(setup or compile failed)"
    return
  fi
  echo; echo "==== meson: test"
  meson test -C "$dir" --print-errorlogs 2>&1 | tee "$log"
  # meson's summary: "Ok: N", "Skipped: N", "Fail: N", "Timeout: N",
  # "Unexpected Pass: N"; each skipped test has a line "... SKIP ...".
  local ok bad skipped names
  ok=$(awk '/^Ok:/ {print $2}' "$log" | tail -n 1)
  bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {n += $NF} END {print n + 0}' "$log")
  skipped=$(awk '/^Skipped:/ {n = $2} END {print n + 0}' "$log")
  names=$(awk '/^ *[0-9]+\/[0-9]+ .* SKIP / {print $2}' "$log" | tr '\n' ' ')
  if [ -z "$ok" ]; then
    report meson 0 1 0 $((SECONDS - start)) "(meson test printed no result)"
    return
  fi
  report meson "$ok" "$bad" "$skipped" $((SECONDS - start)) "" "${names% }"
}

total_start=$SECONDS
for step in "${steps[@]}"; do
  case $step in
    meson) run_meson ;;
    *) run_preset "$step" ;;
  esac
done

echo
echo "==== summary ($((SECONDS - total_start)) s)"
# Indented, so that .ci/run counts each step's line once.
printf '  %s\n' "${summary[@]}"
[ "$failed_steps" -eq 0 ]
