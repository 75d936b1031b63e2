package org.edgeprune.demo.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UnsupportedEncodingException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLEncoder;
import java.util.Map;

/**
 * Talks to the edgeprune backend with plain HttpURLConnection:
 * <ul>
 *   <li>{@code GET  /api/v1/apps/{app}/channels/{channel}/current?abi=...} - which bundle to run</li>
 *   <li>{@code GET  /api/v1/bundles/{sha256}/download} - the bundle zip, resumed with a Range header when a
 *       partial download exists, and checked against its sha256 before it is used</li>
 *   <li>{@code POST /api/v1/measurements} - a Measurement JSON</li>
 * </ul>
 * Every request carries {@code Authorization: Bearer <key>} when a key is configured.
 */
public final class BackendClient {
    private final String baseUrl;
    private final String apiKey;
    private int connectTimeoutMs = 15000;
    private int readTimeoutMs = 60000;

    /** An HTTP answer outside 2xx. */
    public static final class BackendException extends IOException {
        public final int status;

        public BackendException(int status, String message) {
            super(message);
            this.status = status;
        }
    }

    /** The answer of the "current" endpoint. */
    public static final class CurrentBundle {
        public final String sha256;
        public final String name;
        public final String version;
        public final long sizeBytes;
        /** Empty unless the server names its own download URL (absolute or relative to the base URL). */
        public final String downloadUrl;
        public final Map<String, Object> raw;

        CurrentBundle(Map<String, Object> top) {
            raw = top;
            Map<String, Object> m = top.get("bundle") instanceof Map ? Json.getObject(top, "bundle") : top;
            String sha = Json.getString(m, "sha256", Json.getString(m, "bundle_sha256", ""));
            if (!sha.matches("[0-9a-fA-F]{64}")) {
                throw new Json.JsonException("the server's current bundle has no valid sha256");
            }
            sha256 = sha.toLowerCase();
            name = Json.getString(m, "name", "");
            version = Json.getString(m, "version", "");
            sizeBytes = Json.getLong(m, "size_bytes", -1);
            downloadUrl = Json.getString(m, "download_url", "");
        }
    }

    /**
     * @param baseUrl e.g. "https://models.example.org" (a trailing slash is ignored)
     * @param apiKey  bearer token, or empty for none
     */
    public BackendClient(String baseUrl, String apiKey) {
        if (baseUrl == null || !(baseUrl.startsWith("http://") || baseUrl.startsWith("https://"))) {
            throw new IllegalArgumentException("backend URL must start with http:// or https://, got '" + baseUrl + "'");
        }
        String refused = NetPolicy.refusal(baseUrl);
        if (refused != null) {
            throw new IllegalArgumentException(refused);
        }
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.apiKey = apiKey == null ? "" : apiKey;
    }

    public void setTimeouts(int connectMs, int readMs) {
        this.connectTimeoutMs = connectMs;
        this.readTimeoutMs = readMs;
    }

    static String segment(String s) {
        try {
            return URLEncoder.encode(s, "UTF-8").replace("+", "%20");
        } catch (UnsupportedEncodingException e) {
            throw new IllegalStateException(e);
        }
    }

    private HttpURLConnection open(String urlOrPath, String method) throws IOException {
        String url = urlOrPath.startsWith("http://") || urlOrPath.startsWith("https://") ? urlOrPath : baseUrl + urlOrPath;
        String refused = NetPolicy.refusal(url);
        if (refused != null) {
            throw new IOException(refused);
        }
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setInstanceFollowRedirects(false); // a redirect must not carry the key to another host
        c.setRequestMethod(method);
        c.setConnectTimeout(connectTimeoutMs);
        c.setReadTimeout(readTimeoutMs);
        c.setUseCaches(false);
        c.setRequestProperty("Accept", "application/json");
        if (!apiKey.isEmpty() && NetPolicy.sameOrigin(url, baseUrl)) { // a server-named URL elsewhere gets no key
            c.setRequestProperty("Authorization", "Bearer " + apiKey);
        }
        return c;
    }

    private static String readBody(HttpURLConnection c) throws IOException {
        InputStream in = c.getResponseCode() >= 400 ? c.getErrorStream() : c.getInputStream();
        if (in == null) {
            return "";
        }
        try {
            return new String(IoUtil.readAll(in), IoUtil.UTF8);
        } finally {
            in.close();
        }
    }

    private static BackendException httpError(HttpURLConnection c, String what) throws IOException {
        int status = c.getResponseCode();
        String body = readBody(c);
        if (body.length() > 300) {
            body = body.substring(0, 300) + "...";
        }
        return new BackendException(status, what + " failed: HTTP " + status + (body.isEmpty() ? "" : " " + body));
    }

    /** Which bundle the channel currently serves for this ABI. */
    public CurrentBundle current(String app, String channel, String abi) throws IOException {
        String path = "/api/v1/apps/" + segment(app) + "/channels/" + segment(channel) + "/current?abi=" + segment(abi);
        HttpURLConnection c = open(path, "GET");
        try {
            if (c.getResponseCode() / 100 != 2) {
                throw httpError(c, "GET " + path);
            }
            try {
                return new CurrentBundle(Json.parseObject(readBody(c)));
            } catch (Json.JsonException e) {
                throw new IOException("bad answer from GET " + path + ": " + e.getMessage(), e);
            }
        } finally {
            c.disconnect();
        }
    }

    /** Downloads the bundle with {@code sha256} to {@code dest} (see {@link #download(String, String, File)}). */
    public File download(String sha256, File dest) throws IOException {
        return download(sha256, "", dest);
    }

    /**
     * Downloads to {@code dest + ".part"}, resuming from its current length with a Range request, then checks
     * the sha256 of the whole file and renames it to {@code dest}. A checksum mismatch deletes the partial
     * file and throws, so the next attempt starts clean.
     */
    public File download(String sha256, String downloadUrl, File dest) throws IOException {
        String expected = sha256.toLowerCase();
        String path = downloadUrl == null || downloadUrl.isEmpty()
                ? "/api/v1/bundles/" + segment(expected) + "/download" : downloadUrl;
        File part = new File(dest.getPath() + ".part");
        File dir = part.getAbsoluteFile().getParentFile();
        if (dir != null && !dir.isDirectory() && !dir.mkdirs()) {
            throw new IOException("cannot create " + dir);
        }
        long have = part.isFile() ? part.length() : 0;
        HttpURLConnection c = open(path, "GET");
        c.setRequestProperty("Accept", "application/octet-stream");
        if (have > 0) {
            c.setRequestProperty("Range", "bytes=" + have + "-");
        }
        boolean append;
        try {
            int status = c.getResponseCode();
            if (status == 416 && have > 0) {
                // the partial file is already complete (or longer than the resource): check it below
                append = true;
                c.disconnect();
                c = null;
            } else if (status == 206 && have > 0) {
                append = true;
            } else if (status == 200) {
                append = false; // server ignored the Range header: start over
            } else {
                throw httpError(c, "GET " + path);
            }
            if (c != null) {
                long announced = contentLength(c);
                InputStream in = c.getInputStream();
                OutputStream out = new FileOutputStream(part, append);
                long got;
                try {
                    got = IoUtil.copy(in, out);
                    out.flush();
                } finally {
                    out.close();
                    in.close();
                }
                // HttpURLConnection reports a cut-off body as a normal end of stream: check the length
                if (announced >= 0 && got < announced) {
                    throw new IOException("download interrupted after " + got + " of " + announced
                            + " bytes; call again to resume");
                }
            }
        } finally {
            if (c != null) {
                c.disconnect();
            }
        }
        String actual = Hashing.sha256(part);
        if (!actual.equals(expected)) {
            part.delete();
            throw new IOException("downloaded bundle has sha256 " + actual + ", expected " + expected
                    + "; the partial file was deleted, retry the download");
        }
        if (dest.exists() && !dest.delete()) {
            throw new IOException("cannot replace " + dest);
        }
        if (!part.renameTo(dest)) {
            throw new IOException("cannot rename " + part + " to " + dest);
        }
        return dest;
    }

    /** The Content-Length header, or -1 (getContentLengthLong needs API 24+ on Android, read the header). */
    private static long contentLength(HttpURLConnection c) {
        String v = c.getHeaderField("Content-Length");
        if (v == null) {
            return -1;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Uploads one Measurement JSON; returns the server's answer body. */
    public String postMeasurement(String measurementJson) throws IOException {
        String path = "/api/v1/measurements";
        HttpURLConnection c = open(path, "POST");
        try {
            byte[] body = measurementJson.getBytes(IoUtil.UTF8);
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/json; charset=utf-8");
            c.setFixedLengthStreamingMode(body.length);
            OutputStream out = c.getOutputStream();
            try {
                out.write(body);
            } finally {
                out.close();
            }
            if (c.getResponseCode() / 100 != 2) {
                throw httpError(c, "POST " + path);
            }
            return readBody(c);
        } finally {
            c.disconnect();
        }
    }
}
