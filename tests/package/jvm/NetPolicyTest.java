import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.edgeprune.demo.core.BackendClient;
import org.edgeprune.demo.core.NetPolicy;
import org.edgeprune.demo.core.SelfTestCache;
import org.junit.Test;

/** Cleartext only to loopback/emulator, the stored key never leaves for another server, self-test cache keys. */
public class NetPolicyTest {
    private static final String STORED = "ep_stored_secret";

    @Test
    public void cleartextOnlyToLoopbackAndTheEmulatorHost() {
        assertNull(NetPolicy.refusal("http://127.0.0.1:8000"));
        assertNull(NetPolicy.refusal("http://localhost:8000/api"));
        assertNull(NetPolicy.refusal("http://10.0.2.2:8000"));
        assertNull(NetPolicy.refusal("https://models.example.org"));
        assertTrue(NetPolicy.refusal("http://models.example.org").contains("cleartext"));
        assertTrue(NetPolicy.refusal("http://192.168.1.20:8000").contains("cleartext"));
        assertTrue(NetPolicy.refusal("http://127.0.0.1.evil.org").contains("cleartext"));
        assertTrue(NetPolicy.refusal("http://user:pw@127.0.0.1").contains("user name"));
        assertTrue(NetPolicy.refusal("ftp://127.0.0.1/x").contains("only http(s)"));
        assertTrue(NetPolicy.refusal("not a url").contains("not a valid URL"));
        try {
            new BackendClient("http://models.example.org", "k");
            fail("the client accepted cleartext to a public host");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("cleartext"));
        }
        new BackendClient("http://10.0.2.2:8000", "k"); // the emulator's alias of the host machine is fine
    }

    @Test
    public void aForeignAddressGetsNoStoredKey() {
        String configured = "https://models.example.org";
        assertEquals("", NetPolicy.keyFor("https://attacker.example", configured, null, STORED));
        assertEquals("", NetPolicy.keyFor("https://models.example.org.attacker.example", configured, null, STORED));
        assertEquals("", NetPolicy.keyFor("https://models.example.org:8443", configured, null, STORED));
        assertEquals("", NetPolicy.keyFor("http://models.example.org", configured, null, STORED));
        assertEquals("", NetPolicy.keyFor("https://models.example.org/other", configured, null, STORED));
        assertEquals("", NetPolicy.keyFor("https://attacker.example#@models.example.org", configured, "", STORED));
        assertEquals("", NetPolicy.keyFor("garbage", configured, "", STORED));
        assertEquals("", NetPolicy.keyFor("https://models.example.org", "", null, STORED)); // nothing configured
        // the configured server, however it is spelled, gets the stored key
        assertEquals(STORED, NetPolicy.keyFor("https://models.example.org/", configured, null, STORED));
        assertEquals(STORED, NetPolicy.keyFor("HTTPS://Models.Example.ORG:443", configured, "", STORED));
        // a key the caller passed itself is the caller's own and goes where the caller asked
        assertEquals("callers", NetPolicy.keyFor("https://attacker.example", configured, "callers", STORED));
    }

    @Test
    public void serverNamedUrlsOnAnotherOriginAreNotSameOrigin() {
        assertTrue(NetPolicy.sameOrigin("https://a.org/api/v1/bundles/x/download", "https://a.org"));
        assertTrue(!NetPolicy.sameOrigin("https://cdn.a.org/x", "https://a.org"));
        assertTrue(!NetPolicy.sameOrigin("http://a.org/x", "https://a.org"));
    }

    @Test
    public void selfTestCacheKeyChangesWithBundleArtifactAppAndRuntime() {
        String k = SelfTestCache.key("h1", "m.tflite", "0.1.0", "LiteRT 2.3.0");
        assertEquals(k, SelfTestCache.key("h1", "m.tflite", "0.1.0", "LiteRT 2.3.0"));
        assertNotEquals(k, SelfTestCache.key("h2", "m.tflite", "0.1.0", "LiteRT 2.3.0"));
        assertNotEquals(k, SelfTestCache.key("h1", "q.tflite", "0.1.0", "LiteRT 2.3.0"));
        assertNotEquals(k, SelfTestCache.key("h1", "m.tflite", "0.1.1", "LiteRT 2.3.0"));
        assertNotEquals(k, SelfTestCache.key("h1", "m.tflite", "0.1.0", "LiteRT 2.3.1"));
    }
}
