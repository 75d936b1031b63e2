package org.edgeprune.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.List;
import java.util.Map;

import org.junit.Test;

/** Same numbers as edgeprune.profile.latency_stats on the same samples (computed by Python). */
public class StatsTest {
    private static final String[] FIELDS = {"mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms",
        "trimmed_mean_ms"};

    @Test
    @SuppressWarnings("unchecked")
    public void matchesPythonLatencyStats() throws Exception {
        List<Object> cases = Fixtures.list("stats_cases.json");
        assertTrue(cases.size() >= 5);
        for (Object o : cases) {
            Map<String, Object> c = (Map<String, Object>) o;
            double[] samples = Fixtures.doubles(c.get("samples"));
            double trim = ((Number) c.get("trim")).doubleValue();
            Map<String, Object> want = (Map<String, Object>) c.get("expected");
            Map<String, Object> got = Stats.of(samples, trim).toJson();
            assertEquals(want.keySet(), got.keySet());
            assertEquals(((Number) want.get("n")).longValue(), ((Number) got.get("n")).longValue());
            for (String f : FIELDS) {
                double w = ((Number) want.get(f)).doubleValue();
                double g = ((Number) got.get(f)).doubleValue();
                assertEquals("n=" + samples.length + " trim=" + trim + " " + f, w, g, 1e-9 * Math.max(1.0, Math.abs(w)));
            }
        }
    }

    @Test
    public void percentilesInterpolateLikeNumpy() {
        double[] sorted = {1, 2, 3, 4};
        assertEquals(2.5, Stats.percentileSorted(sorted, 50), 0.0);
        assertEquals(3.7, Stats.percentileSorted(sorted, 90), 1e-12);
        assertEquals(1.0, Stats.percentileSorted(sorted, 0), 0.0);
        assertEquals(4.0, Stats.percentileSorted(sorted, 100), 0.0);
    }

    @Test
    public void rejectsBadSamples() {
        double[][] bad = {{}, {1.0, Double.NaN}, {1.0, -2.0}, {Double.POSITIVE_INFINITY}};
        for (double[] b : bad) {
            try {
                Stats.of(b);
                fail("accepted " + java.util.Arrays.toString(b));
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().length() > 0);
            }
        }
        try {
            Stats.of(new double[] {1.0}, 0.5);
            fail("accepted trim 0.5");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("trim"));
        }
    }
}
