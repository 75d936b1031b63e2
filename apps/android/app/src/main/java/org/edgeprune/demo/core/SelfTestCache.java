package org.edgeprune.demo.core;

/**
 * Key of a stored self-test result: a PASS is only reused for the same bundle (hash of model.json, which
 * lists the sha256 of every file), the same artifact, the same app version and the same runtime version.
 * Updating the app or the runtime therefore re-runs the self-test.
 */
public final class SelfTestCache {
    private SelfTestCache() {
    }

    public static String key(String bundleHash, String artifact, String appVersion, String runtimeVersion) {
        return "selftest:v2:" + Hashing.sha256((bundleHash + "\n" + artifact + "\n" + appVersion + "\n"
                + runtimeVersion).getBytes(IoUtil.UTF8));
    }
}
