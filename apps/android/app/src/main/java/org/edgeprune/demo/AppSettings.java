package org.edgeprune.demo;

import android.content.Context;
import android.content.SharedPreferences;

import org.edgeprune.demo.core.BundleSignature;

/** Backend URL, API key and channel, kept in SharedPreferences (set from the main screen). */
final class AppSettings {
    private static final String PREFS = "edgeprune";

    private AppSettings() {
    }

    private static SharedPreferences prefs(Context ctx) {
        return ctx.getSharedPreferences(PREFS, Context.MODE_PRIVATE);
    }

    static String backendUrl(Context ctx) {
        return prefs(ctx).getString("backend_url", "");
    }

    static String apiKey(Context ctx) {
        return prefs(ctx).getString("api_key", "");
    }

    static String channel(Context ctx) {
        return prefs(ctx).getString("channel", "stable");
    }

    static String appName(Context ctx) {
        return prefs(ctx).getString("app_name", "edgeprune-demo");
    }

    static void save(Context ctx, String url, String key, String channel, String app) {
        prefs(ctx).edit().putString("backend_url", url.trim()).putString("api_key", key.trim())
                .putString("channel", channel.trim().isEmpty() ? "stable" : channel.trim())
                .putString("app_name", app.trim().isEmpty() ? "edgeprune-demo" : app.trim()).apply();
    }

    /** Directory of the bundle last downloaded from the backend, or "" to use the APK's own bundle. */
    static String downloadedBundle(Context ctx) {
        return prefs(ctx).getString("downloaded_bundle", "");
    }

    static void saveDownloadedBundle(Context ctx, String dir) {
        prefs(ctx).edit().putString("downloaded_bundle", dir).apply();
    }

    /** The publisher key this build pins (res/values/publisher_key.xml), or null when none is set. */
    static byte[] pinnedPublisherKey(Context ctx) {
        return BundleSignature.parsePinnedKey(ctx.getString(R.string.publisher_public_key));
    }

    /** The stored self-test summary for a bundle, or null before its first run. */
    static String selfTestResult(Context ctx, String cacheKey) {
        return prefs(ctx).getString(cacheKey, null);
    }

    /** {@code cacheKey} from core.SelfTestCache: bundle hash, artifact, app version and runtime version. */
    static void saveSelfTestResult(Context ctx, String cacheKey, String summary) {
        prefs(ctx).edit().putString(cacheKey, summary).apply();
    }
}
