package org.edgeprune.demo.core;

import java.net.MalformedURLException;
import java.net.URL;
import java.util.Locale;

/**
 * Network rules of the app, in plain Java so the JVM tests cover them:
 * <ul>
 *   <li>cleartext HTTP only to loopback / the emulator's host alias (127.0.0.1, localhost, 10.0.2.2); the
 *       manifest's network security config says the same to the platform;</li>
 *   <li>the stored API key only ever goes to the configured server: a request for any other address gets
 *       no key (an exported activity must not be usable to send the key to an attacker's server).</li>
 * </ul>
 */
public final class NetPolicy {
    private static final String[] CLEARTEXT_HOSTS = {"127.0.0.1", "localhost", "10.0.2.2"};

    private NetPolicy() {
    }

    /** Why {@code url} may not be used, or null if it may (https anywhere, http only to loopback/emulator). */
    public static String refusal(String url) {
        URL u;
        try {
            u = new URL(url);
        } catch (MalformedURLException e) {
            return "not a valid URL: '" + url + "'";
        } catch (RuntimeException e) {
            return "not a valid URL: '" + url + "'";
        }
        String scheme = u.getProtocol().toLowerCase(Locale.ROOT);
        if (u.getUserInfo() != null) {
            return "URLs with a user name or password are not allowed";
        }
        if (u.getHost() == null || u.getHost().isEmpty()) {
            return "the URL has no host: '" + url + "'";
        }
        if ("https".equals(scheme)) {
            return null;
        }
        if ("http".equals(scheme)) {
            return cleartextAllowedHost(u.getHost()) ? null
                    : "cleartext http:// is only allowed to 127.0.0.1, localhost and 10.0.2.2 (the emulator's host); "
                            + "use https:// for " + u.getHost();
        }
        return "only http(s) URLs are allowed, got '" + scheme + "'";
    }

    public static boolean cleartextAllowedHost(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        for (String ok : CLEARTEXT_HOSTS) {
            if (ok.equals(h)) {
                return true;
            }
        }
        return false;
    }

    /** scheme://host:port/path with lower-case scheme and host, default port made explicit, no trailing "/". */
    public static String canonicalBase(String url) {
        try {
            URL u = new URL(url.trim());
            String scheme = u.getProtocol().toLowerCase(Locale.ROOT);
            int port = u.getPort() == -1 ? u.getDefaultPort() : u.getPort();
            String path = u.getPath();
            while (path.endsWith("/")) {
                path = path.substring(0, path.length() - 1);
            }
            return scheme + "://" + u.getHost().toLowerCase(Locale.ROOT) + ":" + port + path;
        } catch (MalformedURLException e) {
            return null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** True if {@code url} is on the same scheme, host and port as {@code base} (any path). */
    public static boolean sameOrigin(String url, String base) {
        String a = canonicalBase(url);
        String b = canonicalBase(base);
        if (a == null || b == null) {
            return false;
        }
        int ia = a.indexOf('/', a.indexOf("://") + 3);
        int ib = b.indexOf('/', b.indexOf("://") + 3);
        return (ia < 0 ? a : a.substring(0, ia)).equals(ib < 0 ? b : b.substring(0, ib));
    }

    /**
     * The API key to send to {@code requestedServer}:
     * <ul>
     *   <li>a key the caller passed itself ({@code callerKey}, e.g. {@code --es key} over adb) is the caller's
     *       own secret and goes where the caller asked;</li>
     *   <li>the key stored in the app goes only to the configured server (same canonical base URL);</li>
     *   <li>any other address gets no key ("").</li>
     * </ul>
     */
    public static String keyFor(String requestedServer, String configuredServer, String callerKey, String storedKey) {
        if (callerKey != null && !callerKey.isEmpty()) {
            return callerKey;
        }
        if (storedKey == null || storedKey.isEmpty() || requestedServer == null || configuredServer == null) {
            return "";
        }
        String req = canonicalBase(requestedServer);
        return req != null && req.equals(canonicalBase(configuredServer)) ? storedKey : "";
    }
}
