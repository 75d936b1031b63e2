package org.edgeprune.demo.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** model.json written by the Python schema (BundleModelJson) is parsed and verified; tampering is caught. */
public class BundleTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private File privateCopy() throws IOException {
        File dst = tmp.newFolder("bundle");
        Fixtures.copyTree(Fixtures.file("bundle"), dst);
        return dst;
    }

    @Test
    public void parsesTheBundleWrittenByPython() throws Exception {
        Map<String, Object> expect = Fixtures.object("expect.json");
        Bundle b = Bundle.open(Fixtures.file("bundle"));
        BundleModel m = b.model;
        assertEquals(expect.get("name"), m.name);
        assertEquals(expect.get("version"), m.version);
        assertEquals(expect.get("class_names"), m.classNames);
        assertEquals(expect.get("intended_use"), m.intendedUse);
        assertEquals(((Number) expect.get("n_golden")).intValue(), m.goldenSamples.size());
        BundleModel.Artifact a = m.primaryArtifact("tflite");
        assertEquals(expect.get("artifact_file"), a.file);
        assertEquals(expect.get("artifact_sha256"), a.sha256);
        assertEquals(((Number) expect.get("artifact_size")).longValue(), a.sizeBytes);
        assertEquals("passed", a.gate);
        assertEquals(4, a.inputs.get(0).shape.length);
        assertTrue(Double.isNaN(a.inputs.get(0).quantScale));
        PreprocessContract c = m.preprocessing;
        double[] hw = Fixtures.doubles(expect.get("input_size"));
        assertEquals((int) hw[0], c.inputHeight);
        assertEquals((int) hw[1], c.inputWidth);
        assertEquals(expect.get("layout"), c.layout);
        assertEquals(((Number) expect.get("in_channels")).intValue(), c.inChannels);
        assertArrayEquals(Fixtures.doubles(expect.get("mean")), c.mean, 0.0);
        assertArrayEquals(Fixtures.doubles(expect.get("std")), c.std, 0.0);
        assertEquals(1.0 / 255.0, c.scale, 1e-15);
        @SuppressWarnings("unchecked")
        Map<String, Object> thresholds = (Map<String, Object>) expect.get("decision_thresholds");
        for (String k : thresholds.keySet()) {
            assertEquals(((Number) thresholds.get(k)).doubleValue(), m.decisionThresholds.get(k), 0.0);
        }
        assertEquals(m.classNames, b.labels());
        for (BundleModel.GoldenSample g : m.goldenSamples) {
            assertEquals(m.classNames.size(), g.expectedLogits.length);
            assertEquals(((Number) expect.get("golden_atol")).doubleValue(), g.atol, 0.0);
        }
    }

    @Test
    public void verifyChecksEveryListedFile() throws Exception {
        Map<String, Object> expect = Fixtures.object("expect.json");
        Bundle b = Bundle.open(privateCopy());
        assertFalse(b.isVerified());
        List<String> checked = b.verify();
        assertTrue(b.isVerified());
        @SuppressWarnings("unchecked")
        List<Object> files = (List<Object>) expect.get("files");
        assertEquals(new HashSet<Object>(files), new HashSet<Object>(checked));
    }

    @Test
    public void flippedByteInTheModelIsDetected() throws Exception {
        File root = privateCopy();
        RandomAccessFile f = new RandomAccessFile(new File(root, "model.tflite"), "rw");
        try {
            f.seek(100);
            int v = f.read();
            f.seek(100);
            f.write(v ^ 0x01);
        } finally {
            f.close();
        }
        expectRefused(root, "sha256 mismatch for model.tflite");
    }

    @Test
    public void truncatedOrMissingFilesAreDetected() throws Exception {
        File root = privateCopy();
        File labels = new File(root, "labels.txt");
        byte[] data = IoUtil.readFile(labels);
        byte[] shorter = new byte[data.length - 1];
        System.arraycopy(data, 0, shorter, 0, shorter.length);
        IoUtil.writeAtomic(labels, shorter);
        expectRefused(root, "labels.txt has");
        assertTrue(new File(root, "golden/sample_1.npy").delete());
        IoUtil.writeAtomic(labels, data);
        expectRefused(root, "missing: golden/sample_1.npy");
    }

    @Test
    public void pathsOutsideTheBundleAreRefused() throws Exception {
        File root = privateCopy();
        File json = new File(root, Bundle.MODEL_JSON);
        String text = IoUtil.readText(json).replace("\"labels.txt\"", "\"../labels.txt\"");
        IoUtil.writeTextAtomic(json, text);
        expectRefused(root, "unsafe path");
    }

    @Test
    public void badModelJsonIsABundleError() throws Exception {
        File root = tmp.newFolder("broken");
        IoUtil.writeTextAtomic(new File(root, Bundle.MODEL_JSON), "{\"name\": \"x\", \"version\": \"1\", \"artifacts\": []}");
        try {
            Bundle.open(root);
            fail("accepted a bundle without artifacts");
        } catch (Bundle.BundleException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("no artifacts"));
        }
        IoUtil.writeTextAtomic(new File(root, Bundle.MODEL_JSON), "{\"schema_version\": 99, \"name\": \"x\"}");
        try {
            Bundle.open(root);
            fail("accepted a newer schema");
        } catch (Bundle.BundleException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("update the app"));
        }
    }

    @Test
    public void unzipFindsTheBundleAndRefusesZipSlip() throws Exception {
        File src = Fixtures.file("bundle");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ZipOutputStream zip = new ZipOutputStream(bytes);
        for (String name : new String[] {"model.json", "model.tflite", "labels.txt", "manifest.json",
                "golden/sample_0.npy", "golden/sample_0.png", "golden/sample_1.npy", "golden/sample_1.png",
                "golden/sample_2.npy", "golden/sample_2.png"}) {
            zip.putNextEntry(new ZipEntry("fixture-1.2.3/" + name));
            zip.write(IoUtil.readFile(new File(src, name)));
            zip.closeEntry();
        }
        zip.close();
        File root = Bundle.unzip(new ByteArrayInputStream(bytes.toByteArray()), tmp.newFolder("unzipped"));
        assertEquals("fixture-1.2.3", root.getName());
        Bundle.openVerified(root);

        ByteArrayOutputStream evil = new ByteArrayOutputStream();
        zip = new ZipOutputStream(evil);
        zip.putNextEntry(new ZipEntry("../escape.txt"));
        zip.write(1);
        zip.closeEntry();
        zip.close();
        File dest = tmp.newFolder("evil");
        try {
            Bundle.unzip(new ByteArrayInputStream(evil.toByteArray()), dest);
            fail("zip slip accepted");
        } catch (Bundle.BundleException e) {
            assertFalse(new File(dest.getParentFile(), "escape.txt").exists());
        }
    }

    private static void expectRefused(File root, String message) throws Exception {
        try {
            Bundle.openVerified(root);
            fail("tampered bundle accepted (expected: " + message + ")");
        } catch (Bundle.BundleException e) {
            assertTrue("message was: " + e.getMessage(), e.getMessage().contains(message));
        }
    }
}
