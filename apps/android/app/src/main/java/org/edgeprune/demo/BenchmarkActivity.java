package org.edgeprune.demo;

import android.app.Activity;
import android.content.Intent;
import android.util.Log;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;

import org.edgeprune.demo.core.BackendClient;
import org.edgeprune.demo.core.Bundle;
import org.edgeprune.demo.core.BundleModel;
import org.edgeprune.demo.core.GoldenSelfTest;
import org.edgeprune.demo.core.IoUtil;
import org.edgeprune.demo.core.MeasurementJson;
import org.edgeprune.demo.core.ModelRunner;
import org.edgeprune.demo.core.NetPolicy;
import org.edgeprune.demo.core.Npy;
import org.edgeprune.demo.core.Stats;
import org.edgeprune.demo.runtime.Runners;

/**
 * Headless benchmark, started from the host:
 * <pre>
 * adb shell am start -n org.edgeprune.demo/.BenchmarkActivity --es model model.tflite --ei threads 4 \
 *     --ei warmup 5 --ei runs 50 --es delegate xnnpack --es out results.json \
 *     [--ez upload true --es server https://host --es key KEY]
 * </pre>
 * {@code model} is a path inside the bundle (assets/bundle/...), an asset path, or an absolute file path; it
 * defaults to the bundle's primary artifact. Writes the Measurement JSON atomically to
 * {@code getFilesDir()/<out>}, logs {@code EDGEPRUNE_BENCHMARK_DONE <path>} and finishes.
 */
public final class BenchmarkActivity extends Activity {
    static final String TAG = "EdgepruneBenchmark";
    static final String DONE = "EDGEPRUNE_BENCHMARK_DONE";
    static final String FAILED = "EDGEPRUNE_BENCHMARK_FAILED";

    @Override
    protected void onCreate(android.os.Bundle state) {
        super.onCreate(state);
        final Intent intent = getIntent();
        new Thread(new Runnable() {
            @Override
            public void run() {
                try {
                    benchmark(intent);
                } catch (Throwable t) {
                    Log.e(TAG, FAILED + " " + t, t);
                } finally {
                    runOnUiThread(new Runnable() {
                        @Override
                        public void run() {
                            finish();
                        }
                    });
                }
            }
        }, "edgeprune-benchmark").start();
    }

    private static String extra(Intent i, String key, String fallback) {
        String v = i.getStringExtra(key);
        return v == null || v.isEmpty() ? fallback : v;
    }

    private void benchmark(Intent intent) throws IOException {
        String out = extra(intent, "out", "results.json");
        if (!out.matches("[A-Za-z0-9_][A-Za-z0-9._-]*")) {
            Log.e(TAG, FAILED + " --es out must be a plain file name, got '" + out + "'");
            return;
        }
        int threads = intent.getIntExtra("threads", 4);
        int warmup = Math.max(0, intent.getIntExtra("warmup", 5));
        int runs = Math.max(1, intent.getIntExtra("runs", 50));
        String delegate = extra(intent, "delegate", ModelRunner.DELEGATE_XNNPACK);

        MeasurementJson m = new MeasurementJson();
        m.threads = threads;
        m.warmup = warmup;
        m.runs = runs;
        m.delegate = delegate;
        m.device = DeviceInfo.fingerprint(this);
        m.extra.put("source", "BenchmarkActivity");
        m.extra.put("app_version", appVersion());
        m.extra.put("requested_delegate", delegate);

        ModelRunner runner = Runners.create();
        m.runtime = runner.runtimeName();
        try {
            if (!ModelRunner.DELEGATE_XNNPACK.equals(delegate) && !ModelRunner.DELEGATE_GPU.equals(delegate)
                    && !ModelRunner.DELEGATE_NONE.equals(delegate)) {
                throw new IllegalArgumentException("--es delegate must be xnnpack, gpu or none, got '" + delegate + "'");
            }
            Bundle bundle = null;
            try {
                bundle = BundleStore.fromAssets(this);
            } catch (Bundle.BundleException e) {
                m.extra.put("bundle_error", e.getMessage());
            }
            ByteBuffer model = loadModel(intent, bundle, m);
            m.artifactSha256 = BundleStore.sha256(model);
            measure(runner, model, bundle, m);
        } catch (Exception e) {
            m.error = e.getMessage() == null ? e.toString() : e.getMessage();
            m.latency = null;
        } finally {
            runner.close();
        }

        File target = new File(getFilesDir(), out);
        String json = m.toJsonText();
        IoUtil.writeTextAtomic(target, json);
        Log.i(TAG, DONE + " " + target.getAbsolutePath());

        if (intent.getBooleanExtra("upload", false)) {
            upload(intent, m, json);
        }
    }

    private ByteBuffer loadModel(Intent intent, Bundle bundle, MeasurementJson m) throws IOException {
        String model = intent.getStringExtra("model");
        if (model == null || model.isEmpty()) {
            if (bundle == null) {
                throw new IOException("no --es model given and the APK has no bundle in assets/bundle/");
            }
            BundleModel.Artifact a = bundle.model.primaryArtifact("tflite");
            m.artifactName = a.file;
            m.extra.put("bundle", bundle.model.name + " " + bundle.model.version);
            return BundleStore.mapAsset(this, BundleStore.ASSET_DIR + "/" + a.file);
        }
        m.artifactName = new File(model).getName();
        if (model.startsWith("/")) {
            return BundleStore.mapFile(new File(model));
        }
        try {
            return BundleStore.mapAsset(this, BundleStore.ASSET_DIR + "/" + model);
        } catch (IOException notInBundle) {
            return BundleStore.mapAsset(this, model);
        }
    }

    private void measure(ModelRunner runner, ByteBuffer model, Bundle bundle, MeasurementJson m) throws Exception {
        double pssBefore = DeviceInfo.pssMb();
        long t0 = System.nanoTime();
        runner.load(model, m.threads, m.delegate);
        m.initMs = (System.nanoTime() - t0) / 1e6;
        m.loadDeltaMb = DeviceInfo.pssMb() - pssBefore;
        m.delegate = runner.activeDelegate().isEmpty() ? m.delegate : runner.activeDelegate().split(" ")[0];
        m.extra.put("active_delegate", runner.activeDelegate());

        float[] input = benchmarkInput(runner, bundle, m);
        t0 = System.nanoTime();
        runner.run(input);
        m.firstInferenceMs = (System.nanoTime() - t0) / 1e6;
        for (int i = 0; i < m.warmup; i++) {
            runner.run(input);
        }
        double[] samples = new double[m.runs];
        for (int i = 0; i < m.runs; i++) {
            long s = System.nanoTime();
            runner.run(input);
            samples[i] = (System.nanoTime() - s) / 1e6;
        }
        m.latency = Stats.of(samples);
        m.pssMb = DeviceInfo.pssMb();
        m.peakRssMb = DeviceInfo.peakRssMb();
        String artifact = bundleArtifact(bundle, m);
        if (artifact != null && !GoldenSelfTest.samplesFor(bundle.model, artifact).isEmpty()) {
            GoldenSelfTest.Report report = GoldenSelfTest.run(bundle, runner, artifact); // this artifact's outputs
            m.extra.put("golden", report.toJson());
        } else if (bundle != null) {
            m.extra.put("golden", "no golden samples for " + m.artifactName);
        }
    }

    /** The bundle artifact being benchmarked, or null when the model did not come from the bundle. */
    private static String bundleArtifact(Bundle bundle, MeasurementJson m) {
        if (bundle == null) {
            return null;
        }
        for (BundleModel.Artifact a : bundle.model.artifacts) {
            if (a.file.equals(m.artifactName) && a.sha256.equals(m.artifactSha256)) {
                return a.file;
            }
        }
        return null;
    }

    /** The first golden input when its size fits the model, else a fixed pseudo-random input. */
    private static float[] benchmarkInput(ModelRunner runner, Bundle bundle, MeasurementJson m) throws Exception {
        int n = 1;
        for (int d : runner.inputShape()) {
            n *= d;
        }
        if (bundle != null && !bundle.model.goldenSamples.isEmpty()) {
            try {
                float[] golden = Npy.read(bundle.resolve(bundle.model.goldenSamples.get(0).inputFile)).data;
                if (golden.length == n) {
                    m.extra.put("input", "golden sample 0");
                    return golden;
                }
            } catch (IOException e) {
                // fall back to synthetic input
            }
        }
        float[] x = new float[n];
        long state = 12345L;
        for (int i = 0; i < n; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            x[i] = ((state >>> 40) & 0xffff) / 32768.0f - 1.0f;
        }
        m.extra.put("input", "synthetic uniform [-1, 1)");
        return x;
    }

    private void upload(Intent intent, MeasurementJson m, String json) {
        if (m.error != null) {
            Log.w(TAG, "EDGEPRUNE_BENCHMARK_UPLOAD skipped: the run failed (" + m.error + ")");
            return;
        }
        String configured = AppSettings.backendUrl(this);
        String server = intent.getStringExtra("server");
        if (server == null || server.isEmpty()) {
            server = configured;
        }
        String callerKey = intent.getStringExtra("key");
        // any app can start this exported activity: the stored key only ever goes to the configured server
        String key = NetPolicy.keyFor(server, configured, callerKey, AppSettings.apiKey(this));
        if (key.isEmpty() && (callerKey == null || callerKey.isEmpty()) && !AppSettings.apiKey(this).isEmpty()) {
            Log.w(TAG, "EDGEPRUNE_BENCHMARK_UPLOAD without the stored key: " + server
                    + " is not the configured server");
        }
        try {
            new BackendClient(server, key).postMeasurement(json);
            Log.i(TAG, "EDGEPRUNE_BENCHMARK_UPLOADED " + m.id);
        } catch (Exception e) {
            Log.e(TAG, "EDGEPRUNE_BENCHMARK_UPLOAD_FAILED " + e.getMessage());
        }
    }

    private String appVersion() {
        try {
            return getPackageManager().getPackageInfo(getPackageName(), 0).versionName;
        } catch (Exception e) {
            return "";
        }
    }
}
