package org.edgeprune.demo.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.util.Map;

import org.junit.Test;

/** .npy files written by numpy (np.save and format v2) read back value for value. */
public class NpyTest {
    @Test
    public void readsNumpyWrittenArrays() throws Exception {
        Map<String, Object> expect = Fixtures.object("npy_expect.json");
        assertTrue(expect.size() >= 5);
        for (String name : expect.keySet()) {
            @SuppressWarnings("unchecked")
            Map<String, Object> e = (Map<String, Object>) expect.get(name);
            Npy npy = Npy.read(new File(Fixtures.file("npy"), name));
            double[] shape = Fixtures.doubles(e.get("shape"));
            assertEquals(name, shape.length, npy.shape.length);
            for (int i = 0; i < shape.length; i++) {
                assertEquals(name, (int) shape[i], npy.shape[i]);
            }
            double[] values = Fixtures.doubles(e.get("values"));
            float[] want = new float[values.length];
            for (int i = 0; i < values.length; i++) {
                want[i] = (float) values[i];
            }
            assertArrayEquals(name, want, npy.data, 0.0f);
        }
    }

    @Test
    public void readsTheGoldenInputsOfTheBundle() throws Exception {
        BundleModel m = Bundle.open(Fixtures.file("bundle")).model;
        for (BundleModel.GoldenSample g : m.goldenSamples) {
            Npy npy = Npy.read(new File(Fixtures.file("bundle"), g.inputFile));
            assertEquals("<f4", npy.descr);
            assertEquals(m.preprocessing.elementCount(), npy.data.length);
        }
    }

    @Test
    public void rejectsGarbageAndTruncation() throws Exception {
        try {
            Npy.parse("definitely not numpy".getBytes("UTF-8"));
            fail();
        } catch (IOException e) {
            assertTrue(e.getMessage().contains("magic"));
        }
        byte[] good = IoUtil.readFile(new File(Fixtures.file("npy"), "f32.npy"));
        byte[] cut = new byte[good.length - 3];
        System.arraycopy(good, 0, cut, 0, cut.length);
        try {
            Npy.parse(cut);
            fail();
        } catch (IOException e) {
            assertTrue(e.getMessage().contains("truncated"));
        }
    }
}
