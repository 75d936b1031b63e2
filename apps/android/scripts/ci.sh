#!/usr/bin/env bash
# CI for apps/android (no Gradle, no network except the Debian mirror):
#   1. installs the Debian tools it needs (idempotent; skipped with EDGEPRUNE_ANDROID_SKIP_APT=1)
#   2. builds the signed debug APK with build_offline_apk.sh
#   3. checks it: apksigner verify, aapt dump badging (package, sdkVersion 24, launchable activity),
#      zipalign -c, every .tflite stored uncompressed, dex has the offline runner and no LiteRT reference
#   4. compile-checks the LiteRT flavor (app/src/litert) against compile-only API stubs
#   5. runs the JVM unit tests (JUnit 4 from Debian, JUnitCore); the last line is "N passed, N failed, N skipped"
# Exit status is non-zero if any step fails.
#
# env: EDGEPRUNE_ANDROID_OUT       output dir (default apps/android/build/ci)
#      EDGEPRUNE_ANDROID_BUNDLE    bundle dir to ship in the APK (default: generated placeholder)
#      EDGEPRUNE_ANDROID_FIXTURES  fixture dir of tests/android/make_fixture_bundle.py (default: generated
#                                  with $PYTHON / the repo's .venv when edgeprune is importable, else those tests skip)
#      EDGEPRUNE_ANDROID_SKIP_APT=1  do not call apt-get
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ANDROID=$(cd "$HERE/.." && pwd)
REPO=$(cd "$ANDROID/../.." && pwd)
OUT=${EDGEPRUNE_ANDROID_OUT:-$ANDROID/build/ci}
CACHE=${EDGEPRUNE_ANDROID_CACHE:-$HOME/.cache/edgeprune-android}
AJ=$CACHE/root/usr/share/java/com.android.android-23.jar
JUNIT_CP=/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar
FAILS=0

step() { echo; echo "== $*"; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# --- 1. Debian packages ----------------------------------------------------------------------------------
PKGS=(aapt zipalign apksigner dexdump junit4 zip unzip android-framework-res)
if [ "${EDGEPRUNE_ANDROID_SKIP_APT:-0}" != 1 ]; then
    step "Debian packages"
    missing=()
    for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
    if [ ${#missing[@]} -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" = 0 ] || SUDO=sudo
        echo "installing: ${missing[*]}"
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            || { echo "error: apt-get install failed"; exit 1; }
    fi
    ok "packages present: ${PKGS[*]}"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
APK=$OUT/edgeprune-demo-offline-debug.apk

# --- 2. build ------------------------------------------------------------------------------------------------
step "build offline APK"
BUILD_ARGS=()
[ -n "${EDGEPRUNE_ANDROID_BUNDLE:-}" ] && BUILD_ARGS+=(--bundle "$EDGEPRUNE_ANDROID_BUNDLE")
if ! "$HERE/build_offline_apk.sh" "${BUILD_ARGS[@]}" "$APK"; then
    bad "build_offline_apk.sh"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
ok "APK size $(wc -c < "$APK" | tr -d ' ') bytes"

# --- 3. checks ------------------------------------------------------------------------------------------------
step "apksigner verify"
# (outputs go to files first: `cmd | grep -q` can fail under pipefail when grep exits early)
apksigner verify --verbose "$APK" > "$OUT/apksigner.txt" 2>&1
APKSIGNER_RC=$?
cat "$OUT/apksigner.txt"
if [ "$APKSIGNER_RC" = 0 ] && grep -q '^Verifies' "$OUT/apksigner.txt"; then ok "signature verifies"; else bad "apksigner verify"; fi

step "aapt dump badging"
aapt dump badging "$APK" > "$OUT/badging.txt" 2>&1
head -5 "$OUT/badging.txt"
grep -q "^package: name='org.edgeprune.demo'" "$OUT/badging.txt" && ok "package org.edgeprune.demo" || bad "package name"
grep -q "^sdkVersion:'24'" "$OUT/badging.txt" && ok "sdkVersion 24" || bad "sdkVersion is not 24"
grep -q "^targetSdkVersion:'35'" "$OUT/badging.txt" && ok "targetSdkVersion 35" || bad "targetSdkVersion is not 35"
grep -q "^launchable-activity: name='org.edgeprune.demo.MainActivity'" "$OUT/badging.txt" \
    && ok "launchable activity MainActivity" || bad "launchable activity"
grep -q "^application-debuggable" "$OUT/badging.txt" && ok "debuggable (run-as works)" || bad "not debuggable"
aapt dump xmltree "$APK" AndroidManifest.xml > "$OUT/manifest-tree.txt" 2>&1
grep -q 'BenchmarkActivity' "$OUT/manifest-tree.txt" && ok "BenchmarkActivity declared" || bad "BenchmarkActivity missing from the manifest"

step "zipalign -c -p 4"
zipalign -c -p 4 "$APK" && ok "aligned" || bad "zipalign -c"

step "models stored uncompressed"
unzip -v "$APK" > "$OUT/unzip.txt"
grep -E 'assets/' "$OUT/unzip.txt"
n_tflite=$(grep -c '\.tflite$' "$OUT/unzip.txt" || true)
n_deflated=$(grep '\.tflite$' "$OUT/unzip.txt" | grep -vc ' Stored ' || true)
if [ "$n_tflite" -ge 1 ] && [ "$n_deflated" -eq 0 ]; then ok "$n_tflite .tflite entries, all Stored"; else bad "tflite not stored ($n_tflite entries, $n_deflated compressed)"; fi
grep -q 'assets/bundle/model.json$' "$OUT/unzip.txt" && ok "assets/bundle/model.json present" || bad "no assets/bundle/model.json"

step "dex contents"
(cd "$OUT" && unzip -o -q "$APK" classes.dex && dexdump classes.dex > dexdump.txt 2>/dev/null)
grep -q "Lorg/edgeprune/demo/runtime/UnbundledModelRunner;" "$OUT/dexdump.txt" && ok "offline runner in dex" || bad "UnbundledModelRunner missing"
grep -q "Lorg/edgeprune/demo/BenchmarkActivity;" "$OUT/dexdump.txt" && ok "BenchmarkActivity in dex" || bad "BenchmarkActivity missing"
if grep -q "Lorg/tensorflow/lite" "$OUT/dexdump.txt"; then bad "offline dex references LiteRT"; else ok "no LiteRT reference in the offline dex"; fi

# --- 4. LiteRT flavor compile check -------------------------------------------------------------------------
step "LiteRT flavor compiles against API stubs (compile only, never packaged)"
mkdir -p "$OUT/litert-check"
if javac -J-XX:TieredStopAtLevel=1 -nowarn -encoding UTF-8 -source 8 -target 8 -bootclasspath "$AJ" -Xlint:-options -d "$OUT/litert-check" \
    $(find "$ANDROID/scripts/litert-api-stubs" "$ANDROID/app/src/main/java/org/edgeprune/demo/core" \
           "$ANDROID/app/src/litert/java" -name '*.java'); then
    ok "app/src/litert compiles"
else
    bad "app/src/litert does not compile"
fi

# --- 5. JVM unit tests --------------------------------------------------------------------------------------
step "JVM unit tests (JUnit 4)"
FIX=${EDGEPRUNE_ANDROID_FIXTURES:-}
if [ -z "$FIX" ]; then
    PY=${PYTHON:-}
    [ -z "$PY" ] && [ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python
    [ -z "$PY" ] && PY=python3
    if "$PY" -c "import edgeprune, numpy" >/dev/null 2>&1 \
        && "$PY" "$REPO/tests/android/make_fixture_bundle.py" "$OUT/fixtures" >/dev/null; then
        FIX=$OUT/fixtures
        ok "fixtures generated by the Python side in $FIX"
    else
        echo "warning: edgeprune is not importable with $PY: fixture-based tests will be skipped"
    fi
fi
JVM=$OUT/jvm
mkdir -p "$JVM/main" "$JVM/test" "$JVM/out"
if ! javac -J-XX:TieredStopAtLevel=1 -nowarn -encoding UTF-8 --release 8 -d "$JVM/main" \
        $(find "$ANDROID/app/src/main/java/org/edgeprune/demo/core" -name '*.java'); then
    bad "compiling core"; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
if ! javac -J-XX:TieredStopAtLevel=1 -nowarn -encoding UTF-8 -cp "$JVM/main:$JUNIT_CP" -d "$JVM/test" \
        $(find "$ANDROID/app/src/test/java" -name '*.java'); then
    bad "compiling tests"; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
TEST_CLASSES=$(cd "$JVM/test" && find . -name '*Test.class' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort)
java -XX:TieredStopAtLevel=1 -Dedgeprune.fixtures="$FIX" -Dedgeprune.out="$JVM/out" -cp "$JVM/main:$JVM/test:$JUNIT_CP" \
    org.edgeprune.demo.core.JvmTestMain $TEST_CLASSES > "$JVM/junit.txt" 2>&1
JUNIT_RC=$?
grep -v '^[0-9]* passed, ' "$JVM/junit.txt"
SUMMARY=$(grep '^[0-9]* passed, ' "$JVM/junit.txt" | tail -1)
[ -n "$SUMMARY" ] || SUMMARY="0 passed, 1 failed, 0 skipped"
[ "$JUNIT_RC" = 0 ] || FAILS=$((FAILS + 1))

echo
if [ "$FAILS" -gt 0 ]; then echo "android CI: $FAILS step(s) failed"; else echo "android CI: all APK checks passed"; fi
echo "$SUMMARY"
[ "$FAILS" -eq 0 ]
