#!/usr/bin/env bash
# Builds a real, signed debug APK of the demo app WITHOUT Gradle (CI / offline machines):
#   Debian aapt2 + zipalign + apksigner (bookworm), android.jar (API 23) + dx from Debian bullseye .debs
#   (fetched once with `apt-get download` into a private cache, no change to the system's apt config),
#   javac (Java 8 bytecode, compiled against android.jar), dx, zipalign -p 4, apksigner.
# The APK uses the "offline" runner: it has NO LiteRT runtime (that only comes from Google's Maven through
# Gradle), so models cannot run; it proves the sources compile and the packaging/signing are correct.
#
# usage: build_offline_apk.sh [--bundle DIR] [--publisher-key KEY] [--no-fetch] [--fetch-only] OUTPUT.apk
#   --bundle DIR   bundle directory (model.json at its root) to ship as assets/bundle/ (.tflite stored uncompressed)
#                  default: a tiny generated placeholder bundle
#   --publisher-key KEY  pin this Ed25519 publisher key (base64 of the 32 raw bytes, as printed by
#                  `edgeprune signing-key create`) instead of res/values/publisher_key.xml's value
#   --no-fetch     fail instead of downloading android.jar/dx when they are not cached
#   --fetch-only   only make sure android.jar/dx are cached, then exit
# env: EDGEPRUNE_ANDROID_CACHE (default ~/.cache/edgeprune-android) holds the .debs, extracted jars and the
#      generated debug keystore (never in git).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP=$(cd "$HERE/../app" && pwd)
CACHE=${EDGEPRUNE_ANDROID_CACHE:-$HOME/.cache/edgeprune-android}
PACKAGE=org.edgeprune.demo
VERSION_CODE=1
VERSION_NAME=0.1.0
MIN_SDK=24
TARGET_SDK=35

BUNDLE=""
PUBLISHER_KEY=""
FETCH=1
FETCH_ONLY=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) BUNDLE=${2:?--bundle needs a directory}; shift 2 ;;
        --no-fetch) FETCH=0; shift ;;
        --fetch-only) FETCH_ONLY=1; shift ;;
        --publisher-key) PUBLISHER_KEY=${2:?--publisher-key needs a base64 key}; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) OUT=$1; shift ;;
    esac
done

die() { echo "error: $*" >&2; exit 1; }

AJ=$CACHE/root/usr/share/java/com.android.android-23.jar
DX=$CACHE/root/usr/share/java/com.android.dx.jar

fetch_sdk() {
    # android.jar (libandroid-23-java) and dx (dalvik-exchange) are not in bookworm; bullseye still is on the
    # machine's normal Debian mirror, so download the two .debs with a private apt state directory.
    [ -f "$AJ" ] && [ -f "$DX" ] && return 0
    [ "$FETCH" = 1 ] || die "android.jar/dx are not cached in $CACHE; run: $0 --fetch-only"
    command -v apt-get >/dev/null || die "apt-get is needed to fetch android.jar and dx (Debian/Ubuntu only)"
    local mirror
    mirror=$(grep -h "^URIs:" /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}' || true)
    if [ -z "$mirror" ]; then
        mirror=$(grep -h "^deb " /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)
    fi
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    mkdir -p "$CACHE"/apt/lists/partial "$CACHE"/apt/cache/archives/partial "$CACHE"/debs
    echo "deb $mirror bullseye main" > "$CACHE/apt/sources.list"
    local opts=(-o Dir::Etc::SourceList="$CACHE/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache="$CACHE/apt/cache")
    if [ "$(id -u)" = 0 ]; then opts+=(-o APT::Sandbox::User=root); fi
    echo "fetching android.jar (API 23) and dx from Debian bullseye ($mirror) into $CACHE ..."
    apt-get "${opts[@]}" update -qq
    (cd "$CACHE/debs" && apt-get "${opts[@]}" download dalvik-exchange libandroid-23-java)
    rm -rf "$CACHE/root"
    for d in "$CACHE"/debs/*.deb; do dpkg-deb -x "$d" "$CACHE/root"; done
    [ -f "$AJ" ] && [ -f "$DX" ] || die "the bullseye packages did not contain android.jar/dx"
}

fetch_sdk
if [ "$FETCH_ONLY" = 1 ]; then echo "android.jar: $AJ"; echo "dx: $DX"; exit 0; fi
[ -n "$OUT" ] || die "give the output APK path (see --help)"
for t in aapt2 zipalign apksigner javac java keytool zip sha256sum; do
    command -v "$t" >/dev/null || die "'$t' not found; install: apt-get install aapt zipalign apksigner openjdk-17-jdk-headless zip"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgeprune-apk.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/assets/bundle" "$WORK/gen" "$WORK/classes"

# --- assets: the given bundle, or a generated placeholder --------------------------------------------------
if [ -n "$BUNDLE" ]; then
    [ -f "$BUNDLE/model.json" ] || die "--bundle $BUNDLE has no model.json at its root"
    cp -R "$BUNDLE"/. "$WORK/assets/bundle/"
else
    P=$WORK/assets/bundle
    printf 'EDGEPRUNE PLACEHOLDER: not a model. Build with --bundle DIR to ship a real bundle.\n' > "$P/placeholder.tflite"
    printf 'class_a\nclass_b\n' > "$P/labels.txt"
    sha() { sha256sum "$1" | cut -d' ' -f1; }
    size() { wc -c < "$1" | tr -d ' '; }
    cat > "$P/model.json" <<EOF
{
  "schema_version": 1,
  "name": "placeholder",
  "version": "0.0.0",
  "created_at": "1970-01-01T00:00:00+00:00",
  "app": "android",
  "artifacts": [{"file": "placeholder.tflite", "format": "tflite", "precision": "fp32", "quantization": "none",
                 "sha256": "$(sha "$P/placeholder.tflite")", "size_bytes": $(size "$P/placeholder.tflite"),
                 "inputs": [], "outputs": [], "gate": "not-run"}],
  "preprocessing": {"input_size": [28, 28], "in_channels": 3, "layout": "NCHW", "dtype": "float32",
                    "scale": 0.00392156862745098, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                    "channel_order": "RGB", "source_channels": 3, "gray_to_rgb": false, "resize": "bilinear",
                    "resize_align_corners": false, "class_names": ["class_a", "class_b"]},
  "labels_file": "labels.txt",
  "class_names": ["class_a", "class_b"],
  "intended_use": "Placeholder bundle of the offline CI build; it contains no model.",
  "golden_samples": [],
  "files": [{"path": "labels.txt", "sha256": "$(sha "$P/labels.txt")", "size_bytes": $(size "$P/labels.txt")}]
}
EOF
fi

# --- manifest: inject the package name (Gradle takes it from `namespace`) ---------------------------------
sed "s|<manifest |<manifest package=\"$PACKAGE\" |" "$APP/src/main/AndroidManifest.xml" > "$WORK/AndroidManifest.xml"

# android.jar (API 23) predates android:networkSecurityConfig (API 24): resolve manifest attributes against
# Debian's framework-res.apk (API 29, package android-framework-res) when it is there. Without it the
# attribute is dropped and usesCleartextTraffic="false" forbids all cleartext (stricter, never looser).
FRAMEWORK_RES=${EDGEPRUNE_FRAMEWORK_RES:-/usr/share/android-framework-res/framework-res.apk}
LINK_BASE=$AJ
if [ -f "$FRAMEWORK_RES" ]; then
    LINK_BASE=$FRAMEWORK_RES
else
    echo "warning: $FRAMEWORK_RES not found (apt-get install android-framework-res): the APK gets no network" \
        "security config, so cleartext is refused everywhere" >&2
    sed -i '/android:networkSecurityConfig=/d' "$WORK/AndroidManifest.xml"
fi

# --- resources + manifest + assets -> unaligned APK --------------------------------------------------------
RES=$APP/src/main/res
if [ -n "$PUBLISHER_KEY" ]; then
    [[ "$PUBLISHER_KEY" =~ ^[A-Za-z0-9+/]{43}=$ ]] || die "--publisher-key must be base64 of 32 bytes (44 characters)"
    cp -R "$RES" "$WORK/res"
    RES=$WORK/res
    tag='<string name="publisher_public_key" translatable="false">'
    sed -i "s|$tag[^<]*</string>|$tag$PUBLISHER_KEY</string>|" "$RES/values/publisher_key.xml"
    grep -q "$PUBLISHER_KEY" "$RES/values/publisher_key.xml" || die "could not set the key in publisher_key.xml"
fi
aapt2 compile --dir "$RES" -o "$WORK/res.zip"
aapt2 link -o "$WORK/app.unaligned.apk" -I "$LINK_BASE" --manifest "$WORK/AndroidManifest.xml" \
    --java "$WORK/gen" -A "$WORK/assets" -0 .tflite \
    --min-sdk-version "$MIN_SDK" --target-sdk-version "$TARGET_SDK" \
    --version-code "$VERSION_CODE" --version-name "$VERSION_NAME" --debug-mode \
    "$WORK/res.zip" 2> >(grep -v "resources.arsc in APK .* is compressed" >&2)

# --- Java (main + offline flavor) -> Java 8 bytecode against android.jar's own java.* (API 23) -> dex -------
find "$APP/src/main/java" "$APP/src/offline/java" "$WORK/gen" -name '*.java' > "$WORK/sources.txt"
javac -J-XX:TieredStopAtLevel=1 -nowarn -encoding UTF-8 -source 8 -target 8 -bootclasspath "$AJ" -Xlint:-options \
    -d "$WORK/classes" @"$WORK/sources.txt"
java -XX:TieredStopAtLevel=1 -jar "$DX" --dex --min-sdk-version="$MIN_SDK" --output="$WORK/classes.dex" "$WORK/classes"
(cd "$WORK" && zip -q -j app.unaligned.apk classes.dex)

# --- align (4 bytes, .so pages) and sign with a cached debug key -------------------------------------------
zipalign -p -f 4 "$WORK/app.unaligned.apk" "$WORK/app.aligned.apk"
KS=$CACHE/debug.keystore
if [ ! -f "$KS" ]; then
    mkdir -p "$CACHE"
    keytool -genkeypair -keystore "$KS" -storepass android -keypass android -alias androiddebugkey \
        -keyalg RSA -keysize 2048 -validity 10000 -dname "CN=Android Debug,O=Android,C=US" -noprompt 2>/dev/null
fi
mkdir -p "$(dirname "$OUT")"
apksigner sign --ks "$KS" --ks-pass pass:android --key-pass pass:android --ks-key-alias androiddebugkey \
    --out "$WORK/app-signed.apk" "$WORK/app.aligned.apk"
mv -f "$WORK/app-signed.apk" "$OUT"
echo "built $OUT ($(wc -c < "$OUT" | tr -d ' ') bytes)"
