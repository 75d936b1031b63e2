package org.edgeprune.demo.core;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Latency summary with the same maths as edgeprune/profile/stats.py {@code latency_stats}: percentiles by
 * numpy's default linear interpolation, population std (ddof=0), and a trimmed mean that drops
 * {@code floor(trim * n)} samples from each end of the sorted samples.
 */
public final class Stats {
    public static final double DEFAULT_TRIM = 0.1;

    public final int n;
    public final double meanMs;
    public final double stdMs;
    public final double minMs;
    public final double maxMs;
    public final double p50Ms;
    public final double p90Ms;
    public final double p99Ms;
    public final double trimmedMeanMs;

    private Stats(double[] samplesMs, double trim) {
        if (samplesMs.length == 0) {
            throw new IllegalArgumentException("no latency samples to summarise; run the benchmark with runs >= 1");
        }
        if (!(trim >= 0.0 && trim < 0.5)) {
            throw new IllegalArgumentException("trim must be in [0, 0.5), got " + trim);
        }
        double[] x = samplesMs.clone();
        for (double v : x) {
            if (Double.isNaN(v) || Double.isInfinite(v) || v < 0) {
                throw new IllegalArgumentException("latency samples must be finite and non-negative");
            }
        }
        Arrays.sort(x);
        n = x.length;
        meanMs = mean(x, 0, n);
        double sq = 0;
        for (double v : x) {
            double d = v - meanMs;
            sq += d * d;
        }
        stdMs = Math.sqrt(sq / n);
        minMs = x[0];
        maxMs = x[n - 1];
        p50Ms = percentileSorted(x, 50);
        p90Ms = percentileSorted(x, 90);
        p99Ms = percentileSorted(x, 99);
        int cut = (int) Math.floor(trim * n);
        trimmedMeanMs = mean(x, cut, n - cut);
    }

    /** Summarises timings in milliseconds with the default 10 % trim. */
    public static Stats of(double[] samplesMs) {
        return new Stats(samplesMs, DEFAULT_TRIM);
    }

    public static Stats of(double[] samplesMs, double trim) {
        return new Stats(samplesMs, trim);
    }

    private static double mean(double[] x, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += x[i];
        }
        return s / (to - from);
    }

    /**
     * numpy.percentile(method="linear") of already sorted values: virtual index (n-1)*q/100, then
     * numpy's lerp (computed from the upper neighbour when the fraction is at least 0.5, as numpy does).
     */
    public static double percentileSorted(double[] sorted, double percent) {
        int n = sorted.length;
        double vi = (n - 1) * (percent / 100.0);
        int prev = (int) Math.floor(vi);
        if (prev < 0) {
            prev = 0;
        }
        if (prev > n - 1) {
            prev = n - 1;
        }
        int next = Math.min(prev + 1, n - 1);
        double gamma = vi - prev;
        double a = sorted[prev];
        double b = sorted[next];
        double diff = b - a;
        return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
    }

    /** The {@code LatencyStats} object of the Measurement schema (field names as in schemas.py). */
    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("n", Long.valueOf(n));
        m.put("mean_ms", meanMs);
        m.put("std_ms", stdMs);
        m.put("min_ms", minMs);
        m.put("max_ms", maxMs);
        m.put("p50_ms", p50Ms);
        m.put("p90_ms", p90Ms);
        m.put("p99_ms", p99Ms);
        m.put("trimmed_mean_ms", trimmedMeanMs);
        return m;
    }
}
