package org.edgeprune.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** BackendClient against a real local HTTP server (com.sun.net.httpserver). */
public class BackendClientTest {
    private static final String KEY = "s3cret-key";

    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private HttpServer server;
    private String base;
    private byte[] payload;
    private String sha;
    private final List<String> log = Collections.synchronizedList(new ArrayList<String>());
    private final List<String> posted = Collections.synchronizedList(new ArrayList<String>());
    /** When > 0, the next download answer is cut off after this many bytes. */
    private volatile int cutAfter;

    @Before
    public void start() throws IOException {
        payload = new byte[200000];
        new Random(3).nextBytes(payload);
        sha = Hashing.sha256(payload);
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/api/v1/apps/", new HttpHandler() {
            @Override
            public void handle(HttpExchange ex) throws IOException {
                log.add("GET " + ex.getRequestURI() + " auth=" + ex.getRequestHeaders().getFirst("Authorization"));
                String body = "{\"app\": \"demo\", \"channel\": \"stable\", \"bundle\": {\"sha256\": \"" + sha
                        + "\", \"name\": \"fixture\", \"version\": \"1.2.3\", \"size_bytes\": " + payload.length + "}}";
                send(ex, 200, body.getBytes("UTF-8"));
            }
        });
        server.createContext("/api/v1/bundles/", new HttpHandler() {
            @Override
            public void handle(HttpExchange ex) throws IOException {
                String range = ex.getRequestHeaders().getFirst("Range");
                log.add("DOWNLOAD range=" + range);
                if (!ex.getRequestURI().getPath().equals("/api/v1/bundles/" + sha + "/download")) {
                    send(ex, 404, "{\"detail\": \"unknown bundle\"}".getBytes("UTF-8"));
                    return;
                }
                int from = 0;
                int status = 200;
                if (range != null && range.startsWith("bytes=") && range.endsWith("-")) {
                    from = Integer.parseInt(range.substring(6, range.length() - 1));
                    status = 206;
                    ex.getResponseHeaders().set("Content-Range",
                            "bytes " + from + "-" + (payload.length - 1) + "/" + payload.length);
                }
                int n = payload.length - from;
                ex.sendResponseHeaders(status, n);
                OutputStream out = ex.getResponseBody();
                int limit = cutAfter;
                if (limit > 0) {
                    cutAfter = 0;
                    out.write(payload, from, limit);
                    out.flush();
                    ex.close();
                    return;
                }
                out.write(payload, from, n);
                out.close();
            }
        });
        server.createContext("/api/v1/measurements", new HttpHandler() {
            @Override
            public void handle(HttpExchange ex) throws IOException {
                String auth = ex.getRequestHeaders().getFirst("Authorization");
                if (!("Bearer " + KEY).equals(auth) || !"POST".equals(ex.getRequestMethod())) {
                    send(ex, 401, "{\"detail\": \"bad key\"}".getBytes("UTF-8"));
                    return;
                }
                posted.add(new String(IoUtil.readAll(ex.getRequestBody()), "UTF-8"));
                send(ex, 201, "{\"status\": \"stored\"}".getBytes("UTF-8"));
            }
        });
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort() + "/";
    }

    @After
    public void stop() {
        server.stop(0);
    }

    private static void send(HttpExchange ex, int status, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, body.length);
        OutputStream out = ex.getResponseBody();
        out.write(body);
        out.close();
    }

    @Test
    public void currentBundleIsParsedAndAuthorized() throws Exception {
        BackendClient client = new BackendClient(base, KEY);
        BackendClient.CurrentBundle c = client.current("demo app", "stable", "arm64-v8a");
        assertEquals(sha, c.sha256);
        assertEquals("1.2.3", c.version);
        assertEquals(payload.length, c.sizeBytes);
        assertEquals("GET /api/v1/apps/demo%20app/channels/stable/current?abi=arm64-v8a auth=Bearer " + KEY, log.get(0));
    }

    @Test
    public void downloadResumesAfterAnInterruptedTransfer() throws Exception {
        BackendClient client = new BackendClient(base, KEY);
        client.setTimeouts(5000, 5000);
        File dest = new File(tmp.getRoot(), "b.zip");
        cutAfter = 70000;
        try {
            client.download(sha, dest);
            fail("a cut-off transfer must not look complete");
        } catch (IOException expected) {
            assertFalse(dest.exists());
        }
        File part = new File(dest.getPath() + ".part");
        assertTrue(part.length() > 0 && part.length() < payload.length);
        long had = part.length();

        client.download(sha, dest);
        assertTrue(dest.isFile());
        assertFalse(part.exists());
        assertEquals(sha, Hashing.sha256(dest));
        assertEquals("DOWNLOAD range=bytes=" + had + "-", log.get(log.size() - 1));
    }

    @Test
    public void downloadWithWrongChecksumIsDiscarded() throws Exception {
        BackendClient client = new BackendClient(base, KEY);
        File dest = new File(tmp.getRoot(), "c.zip");
        File part = new File(dest.getPath() + ".part");
        IoUtil.writeAtomic(part, new byte[] {1, 2, 3}); // garbage prefix: resumed file will not match
        try {
            client.download(sha, dest);
            fail("corrupt download accepted");
        } catch (IOException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("sha256"));
        }
        assertFalse(part.exists());
        assertFalse(dest.exists());
        client.download(sha, dest); // clean retry works
        assertEquals(sha, Hashing.sha256(dest));
    }

    @Test
    public void unknownBundleIsAnHttpError() throws Exception {
        try {
            new BackendClient(base, KEY).download(Hashing.sha256(new byte[] {9}), new File(tmp.getRoot(), "x"));
            fail();
        } catch (BackendClient.BackendException e) {
            assertEquals(404, e.status);
            assertTrue(e.getMessage().contains("unknown bundle"));
        }
    }

    @Test
    public void measurementIsPostedWithTheBearerKey() throws Exception {
        MeasurementJson m = new MeasurementJson();
        m.artifactName = "model.tflite";
        m.latency = Stats.of(new double[] {1, 2, 3});
        String json = m.toJsonText();
        String answer = new BackendClient(base, KEY).postMeasurement(json);
        assertTrue(answer.contains("stored"));
        assertEquals(1, posted.size());
        Map<String, Object> back = Json.parseObject(posted.get(0));
        assertEquals(m.id, back.get("id"));

        try {
            new BackendClient(base, "wrong").postMeasurement(json);
            fail("wrong key accepted");
        } catch (BackendClient.BackendException e) {
            assertEquals(401, e.status);
        }
        assertEquals(1, posted.size());
    }

    @Test
    public void rejectsANonHttpBaseUrl() {
        try {
            new BackendClient("ftp://x", "");
            fail();
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("http"));
        }
    }
}
