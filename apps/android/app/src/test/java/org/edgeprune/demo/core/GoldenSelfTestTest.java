package org.edgeprune.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.util.Map;

import org.junit.Test;

/**
 * The golden self-test passes with a runner that computes the fixture model (W x + b, the same maths
 * Python used for expected_logits) and fails when the runner drifts, breaks or returns the wrong size.
 */
public class GoldenSelfTestTest {
    /** The fixture's linear "model", evaluated in Java. */
    static final class LinearRunner implements ModelRunner {
        final float[] w;
        final float[] b;
        final int classes;
        float bias0Shift;
        boolean broken;
        int dropLast;

        LinearRunner() throws Exception {
            Npy wn = Npy.read(Fixtures.file("linear_w.npy"));
            Npy bn = Npy.read(Fixtures.file("linear_b.npy"));
            w = wn.data;
            b = bn.data;
            classes = wn.shape[0];
        }

        @Override
        public void load(ByteBuffer model, int threads, String delegate) {
        }

        @Override
        public int[] inputShape() {
            return new int[] {1, w.length / classes};
        }

        @Override
        public float[] run(float[] x) throws ModelRunnerException {
            if (broken) {
                throw new ModelRunnerException("delegate crashed");
            }
            int dim = w.length / classes;
            if (x.length != dim) {
                throw new ModelRunnerException("bad input size " + x.length);
            }
            float[] y = new float[classes - dropLast];
            for (int k = 0; k < y.length; k++) {
                double s = b[k];
                for (int i = 0; i < dim; i++) {
                    s += (double) w[k * dim + i] * x[i];
                }
                y[k] = (float) s;
            }
            y[0] += bias0Shift;
            return y;
        }

        @Override
        public String activeDelegate() {
            return "test";
        }

        @Override
        public String runtimeName() {
            return "java linear fixture";
        }

        @Override
        public void close() {
        }
    }

    @Test
    public void passesWithTheExactModel() throws Exception {
        Bundle bundle = Bundle.openVerified(Fixtures.file("bundle"));
        GoldenSelfTest.Report r = GoldenSelfTest.run(bundle, new LinearRunner());
        assertEquals(bundle.model.goldenSamples.size(), r.results.size());
        assertTrue(r.summary(), r.passed());
        assertTrue(r.summary().startsWith("PASS 3/3"));
        for (GoldenSelfTest.Result res : r.results) {
            assertTrue(res.maxAbsDiff <= res.atol);
            assertEquals(res.expectedClass, res.actualClass);
        }
        Map<String, Object> json = r.toJson();
        assertEquals("PASS", json.get("status"));
    }

    @Test
    public void failsWhenLogitsDriftBeyondTolerance() throws Exception {
        Bundle bundle = Bundle.openVerified(Fixtures.file("bundle"));
        LinearRunner drifting = new LinearRunner();
        drifting.bias0Shift = (float) (3 * bundle.model.goldenSamples.get(0).atol);
        GoldenSelfTest.Report r = GoldenSelfTest.run(bundle, drifting);
        assertFalse(r.passed());
        assertTrue(r.summary(), r.summary().startsWith("FAIL 0/3"));
        assertTrue(r.results.get(0).maxAbsDiff > r.results.get(0).atol);

        LinearRunner withinTolerance = new LinearRunner();
        withinTolerance.bias0Shift = (float) (0.25 * bundle.model.goldenSamples.get(0).atol);
        assertTrue(GoldenSelfTest.run(bundle, withinTolerance).passed());
    }

    @Test
    public void failsWhenTheRunnerBreaksOrReturnsTheWrongSize() throws Exception {
        Bundle bundle = Bundle.openVerified(Fixtures.file("bundle"));
        LinearRunner broken = new LinearRunner();
        broken.broken = true;
        GoldenSelfTest.Report r = GoldenSelfTest.run(bundle, broken);
        assertFalse(r.passed());
        assertTrue(r.summary(), r.summary().contains("delegate crashed"));

        LinearRunner shortOutput = new LinearRunner();
        shortOutput.dropLast = 1;
        r = GoldenSelfTest.run(bundle, shortOutput);
        assertFalse(r.passed());
        assertTrue(r.results.get(0).error.contains("logits"));
    }
}
