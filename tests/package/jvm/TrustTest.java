import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.util.List;
import java.util.Map;

import org.edgeprune.demo.core.Base64Codec;
import org.edgeprune.demo.core.Bundle;
import org.edgeprune.demo.core.BundleModel;
import org.edgeprune.demo.core.BundleSignature;
import org.edgeprune.demo.core.GoldenSelfTest;
import org.edgeprune.demo.core.IoUtil;
import org.edgeprune.demo.core.Json;
import org.edgeprune.demo.core.SafeUnzip;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * The app's trust chain on bundles written by the real `edgeprune package --signing-key` (tests/package/test_jvm.py
 * writes them, plus tampered and hostile variants, into -Dedgeprune.trust=DIR with a cases.json).
 */
public class TrustTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static File dir() {
        String d = System.getProperty("edgeprune.trust");
        assertNotNull("run with -Dedgeprune.trust=DIR", d);
        return new File(d);
    }

    private static byte[] key(String name) throws Exception {
        byte[] raw = BundleSignature.parsePinnedKey(IoUtil.readText(new File(dir(), name + ".key")).trim());
        assertNotNull(name + ".key is not a base64 raw key", raw);
        return raw;
    }

    /** Unzips with the download path's rules and opens it as a download is opened: signature first. */
    private Bundle open(String zip, String pin, SafeUnzip.Limits limits) throws Exception {
        File dest = tmp.newFolder();
        File root = SafeUnzip.unzip(new File(dir(), zip), dest, limits);
        return Bundle.openTrusted(root, key(pin));
    }

    @Test
    public void everyCaseIsAcceptedOrRefusedAsExpected() throws Exception {
        List<Map<String, Object>> cases = Json.getObjectList(
                Json.parseObject(IoUtil.readText(new File(dir(), "cases.json"))), "cases");
        assertTrue(cases.size() >= 10);
        for (Map<String, Object> c : cases) {
            String zip = Json.requireString(c, "zip");
            String expect = Json.requireString(c, "expect");
            try {
                Bundle b = open(zip, Json.getString(c, "pin", "publisher"), new SafeUnzip.Limits());
                assertEquals(zip + " was accepted", "accept", expect);
                assertEquals(BundleSignature.keyId(key("publisher")), b.signedBy());
                assertTrue(b.isVerified());
                assertTrue(BundleSignature.available());
            } catch (Bundle.BundleException e) {
                assertTrue(zip + " refused but expected to be accepted: " + e.getMessage(), !"accept".equals(expect));
                assertTrue(zip + ": message '" + e.getMessage() + "' lacks '" + expect + "'",
                        e.getMessage().contains(expect));
            }
        }
    }

    @Test
    public void sizeLimitsCountTheRealInflatedBytes() throws Exception {
        SafeUnzip.Limits small = new SafeUnzip.Limits();
        small.maxEntryBytes = 1000;
        try {
            open("good.zip", "publisher", small);
            fail("an entry above the per-entry limit was accepted");
        } catch (Bundle.BundleException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("inflates past the limit of 1000 bytes"));
        }
        SafeUnzip.Limits total = new SafeUnzip.Limits();
        total.maxTotalBytes = 20000;
        try {
            open("good.zip", "publisher", total);
            fail("a zip above the total limit was accepted");
        } catch (Bundle.BundleException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("total limit"));
        }
    }

    @Test
    public void unsignedDirectoriesNeedAPinnedKey() throws Exception {
        File root = SafeUnzip.unzip(new File(dir(), "good.zip"), tmp.newFolder(), new SafeUnzip.Limits());
        try {
            Bundle.openTrusted(root, null);
            fail("opened without a pinned key");
        } catch (Bundle.BundleException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("no publisher key is pinned"));
        }
    }

    @Test
    public void eachArtifactSelfTestsAgainstItsOwnGoldenOutputs() throws Exception {
        Bundle b = open("multi.zip", "publisher", new SafeUnzip.Limits());
        assertEquals(2, b.model.artifacts.size());
        List<BundleModel.GoldenSample> first = GoldenSelfTest.samplesFor(b.model, b.model.artifacts.get(0).file);
        List<BundleModel.GoldenSample> second = GoldenSelfTest.samplesFor(b.model, b.model.artifacts.get(1).file);
        assertTrue(first.size() > 0);
        assertEquals(first.size(), second.size());
        assertEquals(b.model.goldenSamples.size(), first.size() + second.size());
        for (int i = 0; i < first.size(); i++) {
            assertEquals(first.get(i).inputFile, second.get(i).inputFile);
            assertEquals(b.model.artifacts.get(0).file, first.get(i).artifact);
            assertEquals(b.model.artifacts.get(1).file, second.get(i).artifact);
        }
        assertTrue("int8 and fp32 keep their own tolerances", first.get(0).atol != second.get(0).atol);
        // a runner that reproduces the int8 artifact's logits passes the int8 self-test and fails the fp32 one
        // (the fp32 tolerance is far below int8's rounding error; the int8 tolerance may cover fp32's logits)
        final List<BundleModel.GoldenSample> int8 = first;
        org.edgeprune.demo.core.ModelRunner echo = new FixedRunner(int8);
        assertTrue(GoldenSelfTest.run(b, echo, b.model.artifacts.get(0).file).passed());
        assertTrue(!GoldenSelfTest.run(b, echo, b.model.artifacts.get(1).file).passed());
    }

    @Test
    public void base64MatchesPython() throws Exception {
        Map<String, Object> m = Json.parseObject(IoUtil.readText(new File(dir(), "base64.json")));
        for (Map.Entry<String, Object> e : m.entrySet()) {
            byte[] raw = org.edgeprune.demo.core.Hashing.sha256(e.getKey().getBytes(IoUtil.UTF8)).getBytes(IoUtil.UTF8);
            byte[] want = new byte[Integer.parseInt(e.getKey())];
            System.arraycopy(raw, 0, want, 0, want.length);
            assertEquals(e.getValue(), Base64Codec.encode(want));
            assertEquals(new String(want, IoUtil.UTF8), new String(Base64Codec.decode((String) e.getValue()), IoUtil.UTF8));
        }
        try {
            Base64Codec.decode("ab=c");
            fail("padding in the middle accepted");
        } catch (IllegalArgumentException expected) {
            // refused
        }
    }

    /** Returns, for the n-th run, the expected logits of the n-th given sample (a perfect copy of one artifact). */
    static final class FixedRunner implements org.edgeprune.demo.core.ModelRunner {
        private final List<BundleModel.GoldenSample> samples;
        private int next;

        FixedRunner(List<BundleModel.GoldenSample> samples) {
            this.samples = samples;
        }

        @Override
        public void load(java.nio.ByteBuffer model, int threads, String delegate) {
        }

        @Override
        public int[] inputShape() {
            return new int[0];
        }

        @Override
        public float[] run(float[] input) {
            double[] d = samples.get(next++ % samples.size()).expectedLogits;
            float[] out = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                out[i] = (float) d[i];
            }
            return out;
        }

        @Override
        public String activeDelegate() {
            return "test";
        }

        @Override
        public String runtimeName() {
            return "test";
        }

        @Override
        public void close() {
        }
    }
}
