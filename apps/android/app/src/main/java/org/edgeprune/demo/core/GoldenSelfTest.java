package org.edgeprune.demo.core;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs every golden sample of a bundle through a {@link ModelRunner} and compares the logits with the
 * expected ones within the sample's {@code atol}. This is the on-device check that the exact APK, runtime
 * and delegate reproduce what the host verified.
 */
public final class GoldenSelfTest {
    private GoldenSelfTest() {
    }

    /** Outcome for one sample. */
    public static final class Result {
        public final String inputFile;
        public final boolean passed;
        /** Largest |actual - expected| over the logits (NaN if the run failed). */
        public final double maxAbsDiff;
        public final double atol;
        public final int expectedClass;
        public final int actualClass;
        /** Why it failed to run (empty when it ran). */
        public final String error;

        Result(String inputFile, boolean passed, double maxAbsDiff, double atol, int expectedClass, int actualClass,
               String error) {
            this.inputFile = inputFile;
            this.passed = passed;
            this.maxAbsDiff = maxAbsDiff;
            this.atol = atol;
            this.expectedClass = expectedClass;
            this.actualClass = actualClass;
            this.error = error;
        }
    }

    /** All results; {@link #passed()} needs at least one sample and every sample within tolerance. */
    public static final class Report {
        public final List<Result> results;

        Report(List<Result> results) {
            this.results = Collections.unmodifiableList(results);
        }

        public boolean passed() {
            if (results.isEmpty()) {
                return false;
            }
            for (Result r : results) {
                if (!r.passed) {
                    return false;
                }
            }
            return true;
        }

        public int passedCount() {
            int k = 0;
            for (Result r : results) {
                if (r.passed) {
                    k++;
                }
            }
            return k;
        }

        /** One line for the UI and logcat, e.g. "PASS 3/3 golden samples (max |diff| 2.4e-07)". */
        public String summary() {
            if (results.isEmpty()) {
                return "NO GOLDEN SAMPLES in the bundle: nothing to self-test";
            }
            double worst = 0;
            String firstError = "";
            for (Result r : results) {
                if (!Double.isNaN(r.maxAbsDiff)) {
                    worst = Math.max(worst, r.maxAbsDiff);
                }
                if (firstError.isEmpty() && !r.error.isEmpty()) {
                    firstError = r.error;
                }
            }
            String s = (passed() ? "PASS " : "FAIL ") + passedCount() + "/" + results.size()
                    + " golden samples (max |diff| " + String.format(java.util.Locale.ROOT, "%.3g", worst) + ")";
            return firstError.isEmpty() ? s : s + ": " + firstError;
        }

        public Map<String, Object> toJson() {
            Map<String, Object> m = new LinkedHashMap<String, Object>();
            m.put("status", passed() ? "PASS" : "FAIL");
            m.put("summary", summary());
            List<Object> list = new ArrayList<Object>();
            for (Result r : results) {
                Map<String, Object> e = new LinkedHashMap<String, Object>();
                e.put("input_file", r.inputFile);
                e.put("passed", r.passed);
                e.put("max_abs_diff", r.maxAbsDiff);
                e.put("atol", r.atol);
                e.put("expected_class", Long.valueOf(r.expectedClass));
                e.put("actual_class", Long.valueOf(r.actualClass));
                if (!r.error.isEmpty()) {
                    e.put("error", r.error);
                }
                list.add(e);
            }
            m.put("samples", list);
            return m;
        }
    }

    /** Runs the golden samples of the bundle's primary tflite artifact. */
    public static Report run(Bundle bundle, ModelRunner runner) {
        return run(bundle, runner, bundle.model.primaryArtifact("tflite").file);
    }

    /**
     * The golden samples recorded for {@code artifact}: each artifact has its own expected outputs and
     * tolerances (samples without an artifact name, from older bundles, belong to the primary artifact).
     */
    public static List<BundleModel.GoldenSample> samplesFor(BundleModel model, String artifact) {
        String primary;
        try {
            primary = model.primaryArtifact("tflite").file;
        } catch (Json.JsonException e) {
            primary = "";
        }
        List<BundleModel.GoldenSample> out = new ArrayList<BundleModel.GoldenSample>();
        for (BundleModel.GoldenSample s : model.goldenSamples) {
            String owner = s.artifact.isEmpty() ? primary : s.artifact;
            if (owner.equals(artifact)) {
                out.add(s);
            }
        }
        return out;
    }

    /** Runs the golden samples of {@code artifact} (the model loaded in {@code runner}) against its own outputs. */
    public static Report run(Bundle bundle, ModelRunner runner, String artifact) {
        List<Result> results = new ArrayList<Result>();
        for (BundleModel.GoldenSample s : samplesFor(bundle.model, artifact)) {
            float[] input;
            try {
                File f = bundle.resolve(s.inputFile);
                input = Npy.read(f).data;
            } catch (IOException e) {
                results.add(failed(s, "cannot read " + s.inputFile + ": " + e.getMessage()));
                continue;
            } catch (Bundle.BundleException e) {
                results.add(failed(s, e.getMessage()));
                continue;
            }
            results.add(check(s, input, runner));
        }
        return new Report(results);
    }

    /** Runs one sample whose input is already loaded. */
    public static Result check(BundleModel.GoldenSample s, float[] input, ModelRunner runner) {
        float[] logits;
        try {
            logits = runner.run(input);
        } catch (ModelRunner.ModelRunnerException e) {
            return failed(s, e.getMessage());
        } catch (RuntimeException e) {
            return failed(s, e.toString());
        }
        if (logits.length != s.expectedLogits.length) {
            return new Result(s.inputFile, false, Double.NaN, s.atol, s.expectedClass, Preprocessor.argmax(logits),
                    "model gave " + logits.length + " logits, expected " + s.expectedLogits.length);
        }
        double worst = 0;
        boolean ok = true;
        for (int i = 0; i < logits.length; i++) {
            double d = Math.abs(logits[i] - s.expectedLogits[i]);
            if (Double.isNaN(d)) {
                ok = false;
                worst = Double.POSITIVE_INFINITY;
            } else {
                worst = Math.max(worst, d);
                if (d > s.atol) {
                    ok = false;
                }
            }
        }
        return new Result(s.inputFile, ok, worst, s.atol, s.expectedClass, Preprocessor.argmax(logits), "");
    }

    private static Result failed(BundleModel.GoldenSample s, String why) {
        return new Result(s.inputFile, false, Double.NaN, s.atol, s.expectedClass, -1, why);
    }
}
