package org.edgeprune.demo;

import android.app.Activity;
import android.content.Intent;
import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.graphics.Color;
import android.graphics.Typeface;
import android.net.Uri;
import android.os.Build;
import android.os.Handler;
import android.os.Looper;
import android.text.InputType;
import android.util.Log;
import android.view.View;
import android.widget.Button;
import android.widget.EditText;
import android.widget.ImageView;
import android.widget.LinearLayout;
import android.widget.ScrollView;
import android.widget.TextView;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.edgeprune.demo.core.BackendClient;
import org.edgeprune.demo.core.Bundle;
import org.edgeprune.demo.core.BundleModel;
import org.edgeprune.demo.core.GoldenSelfTest;
import org.edgeprune.demo.core.SelfTestCache;
import org.edgeprune.demo.core.Hashing;
import org.edgeprune.demo.core.ModelRunner;
import org.edgeprune.demo.core.Npy;
import org.edgeprune.demo.core.Preprocessor;
import org.edgeprune.demo.runtime.Runners;

/**
 * The demo screen: loads the bundle (APK assets or backend download), runs the golden self-test on the first
 * launch of each bundle and shows PASS/FAIL, classifies a picked image or the bundled golden samples, and
 * shows per-class probabilities and the intended-use text. Plain Views only (no AndroidX).
 */
public final class MainActivity extends Activity {
    private static final String TAG = "EdgepruneDemo";
    private static final int PICK_IMAGE = 1;

    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final Handler ui = new Handler(Looper.getMainLooper());

    private TextView bundleView;
    private TextView selfTestView;
    private TextView intendedUseView;
    private TextView predictionView;
    private ImageView imageView;
    private EditText urlEdit;
    private EditText keyEdit;
    private EditText channelEdit;
    private EditText appEdit;

    // touched only on the worker thread
    private Bundle bundle;
    private ModelRunner runner;
    private int nextGolden;

    @Override
    protected void onCreate(android.os.Bundle state) {
        super.onCreate(state);
        setContentView(buildUi());
        worker.execute(new Runnable() {
            @Override
            public void run() {
                loadBundle(false);
            }
        });
    }

    @Override
    protected void onDestroy() {
        worker.execute(new Runnable() {
            @Override
            public void run() {
                if (runner != null) {
                    runner.close();
                    runner = null;
                }
            }
        });
        worker.shutdown();
        super.onDestroy();
    }

    // ------------------------------------------------------------------ UI

    private View buildUi() {
        LinearLayout col = new LinearLayout(this);
        col.setOrientation(LinearLayout.VERTICAL);
        int pad = dp(16);
        col.setPadding(pad, pad, pad, pad);

        TextView title = text(getString(R.string.app_name), 22);
        title.setTypeface(Typeface.DEFAULT_BOLD);
        col.addView(title);
        col.addView(text(getString(R.string.not_for_diagnosis), 12));

        bundleView = text("Loading bundle...", 14);
        col.addView(bundleView);
        selfTestView = text("Self-test: not run yet", 18);
        selfTestView.setTypeface(Typeface.DEFAULT_BOLD);
        col.addView(selfTestView);
        intendedUseView = text("", 14);
        col.addView(intendedUseView);

        col.addView(button("Pick an image", new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                Intent pick = new Intent(Intent.ACTION_GET_CONTENT);
                pick.setType("image/*");
                pick.addCategory(Intent.CATEGORY_OPENABLE);
                startActivityForResult(Intent.createChooser(pick, "Choose an image"), PICK_IMAGE);
            }
        }));
        col.addView(button("Next bundled golden sample", new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                worker.execute(new Runnable() {
                    @Override
                    public void run() {
                        classifyNextGolden();
                    }
                });
            }
        }));
        col.addView(button("Re-run self-test", new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                worker.execute(new Runnable() {
                    @Override
                    public void run() {
                        runSelfTest(true);
                    }
                });
            }
        }));

        imageView = new ImageView(this);
        imageView.setAdjustViewBounds(true);
        imageView.setMaxHeight(dp(240));
        col.addView(imageView);
        predictionView = text("", 16);
        predictionView.setTypeface(Typeface.MONOSPACE);
        col.addView(predictionView);

        col.addView(text("Backend (optional)", 16));
        urlEdit = edit("https://server:8000", AppSettings.backendUrl(this), false);
        keyEdit = edit("API key", AppSettings.apiKey(this), true);
        appEdit = edit("app id", AppSettings.appName(this), false);
        channelEdit = edit("channel", AppSettings.channel(this), false);
        col.addView(urlEdit);
        col.addView(keyEdit);
        col.addView(appEdit);
        col.addView(channelEdit);
        col.addView(button("Save and download current bundle", new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                AppSettings.save(MainActivity.this, urlEdit.getText().toString(), keyEdit.getText().toString(),
                        channelEdit.getText().toString(), appEdit.getText().toString());
                worker.execute(new Runnable() {
                    @Override
                    public void run() {
                        loadBundle(true);
                    }
                });
            }
        }));
        col.addView(button("Use the bundle inside the APK", new View.OnClickListener() {
            @Override
            public void onClick(View v) {
                AppSettings.saveDownloadedBundle(MainActivity.this, "");
                worker.execute(new Runnable() {
                    @Override
                    public void run() {
                        loadBundle(false);
                    }
                });
            }
        }));

        ScrollView scroll = new ScrollView(this);
        scroll.addView(col);
        return scroll;
    }

    private int dp(int v) {
        return Math.round(v * getResources().getDisplayMetrics().density);
    }

    private TextView text(String s, int sp) {
        TextView t = new TextView(this);
        t.setText(s);
        t.setTextSize(sp);
        t.setPadding(0, dp(6), 0, dp(6));
        return t;
    }

    private Button button(String label, View.OnClickListener l) {
        Button b = new Button(this);
        b.setText(label);
        b.setOnClickListener(l);
        return b;
    }

    private EditText edit(String hint, String value, boolean secret) {
        EditText e = new EditText(this);
        e.setHint(hint);
        e.setText(value);
        e.setSingleLine(true);
        if (secret) {
            e.setInputType(InputType.TYPE_CLASS_TEXT | InputType.TYPE_TEXT_VARIATION_PASSWORD);
        }
        return e;
    }

    private void post(final TextView view, final String s, final int color) {
        ui.post(new Runnable() {
            @Override
            public void run() {
                view.setText(s);
                if (color != 0) {
                    view.setTextColor(color);
                }
            }
        });
    }

    // ------------------------------------------------------------------ worker-thread logic

    private void loadBundle(boolean download) {
        if (runner != null) {
            runner.close();
            runner = null;
        }
        bundle = null;
        nextGolden = 0;
        try {
            if (download) {
                String url = AppSettings.backendUrl(this);
                if (url.isEmpty()) {
                    post(bundleView, "Set a backend URL first.", Color.RED);
                    return;
                }
                post(bundleView, "Downloading the current bundle...", 0);
                String abi = Build.SUPPORTED_ABIS.length > 0 ? Build.SUPPORTED_ABIS[0] : "";
                bundle = BundleStore.fromBackend(this, new BackendClient(url, AppSettings.apiKey(this)),
                        AppSettings.appName(this), AppSettings.channel(this), abi);
                AppSettings.saveDownloadedBundle(this, bundle.root.getAbsolutePath());
            } else if (!AppSettings.downloadedBundle(this).isEmpty()) {
                bundle = Bundle.openTrusted(new File(AppSettings.downloadedBundle(this)),
                        AppSettings.pinnedPublisherKey(this));
            } else {
                bundle = BundleStore.fromAssets(this);
            }
        } catch (IOException e) {
            post(bundleView, "Bundle not loaded: " + e.getMessage(), Color.RED);
            return;
        } catch (Bundle.BundleException e) {
            post(bundleView, "Bundle refused: " + e.getMessage(), Color.RED);
            return;
        } catch (IllegalArgumentException e) { // e.g. cleartext http:// to a non-loopback host (NetPolicy)
            post(bundleView, "Backend URL refused: " + e.getMessage(), Color.RED);
            return;
        }
        if (bundle == null) {
            post(bundleView, "This APK has no bundle in assets/bundle/. Package one with `edgeprune package` "
                    + "or download one from the backend.", Color.RED);
            return;
        }
        BundleModel m = bundle.model;
        BundleModel.Artifact a = m.primaryArtifact("tflite");
        String gate = "rejected".equals(a.gate) ? "  WARNING: this artifact FAILED the accuracy gate" : "";
        String signed = bundle.signedBy().isEmpty() ? "\nnot signed (shipped inside this APK)"
                : "\nsigned by the pinned publisher key " + bundle.signedBy();
        post(bundleView, m.name + " " + m.version + " - " + a.file + " (" + a.precision + ", gate " + a.gate + ")"
                + "\nall " + m.files.size() + " files verified (sha256)" + signed + gate,
                gate.isEmpty() ? 0 : Color.RED);
        post(intendedUseView, m.intendedUse.isEmpty() ? "" : "Intended use: " + m.intendedUse, 0);
        runner = Runners.create();
        try {
            runner.load(BundleStore.mapFile(bundle.resolve(a.file)), 0, ModelRunner.DELEGATE_XNNPACK);
        } catch (Exception e) {
            // the decoding parity check needs no runtime: run it even when the model cannot be loaded
            post(selfTestView, "Self-test: cannot load the model: " + e.getMessage() + "\n" + preprocessingCheck(),
                    Color.RED);
            runner.close();
            runner = null;
            return;
        }
        runSelfTest(false);
    }

    /** Runs the golden self-test on the first launch of a bundle; later launches show the stored result. */
    private void runSelfTest(boolean force) {
        if (bundle == null || runner == null) {
            post(selfTestView, "Self-test: no model loaded", Color.RED);
            return;
        }
        String bundleHash;
        try {
            bundleHash = Hashing.sha256(new File(bundle.root, Bundle.MODEL_JSON)); // model.json lists every file
        } catch (IOException e) {
            bundleHash = bundle.model.name + "@" + bundle.model.version;
        }
        String artifact = bundle.model.primaryArtifact("tflite").file;
        String key = SelfTestCache.key(bundleHash, artifact, appVersion(), runner.runtimeName());
        String stored = AppSettings.selfTestResult(this, key);
        String summary;
        if (stored != null && !force) {
            summary = stored + "\n(result of the first launch; tap Re-run to repeat)";
        } else {
            GoldenSelfTest.Report report = GoldenSelfTest.run(bundle, runner, artifact); // its own outputs
            summary = report.summary() + "\n" + preprocessingCheck();
            AppSettings.saveSelfTestResult(this, key, summary);
            Log.i(TAG, "EDGEPRUNE_SELFTEST " + summary.replace('\n', ' '));
        }
        post(selfTestView, "Self-test: " + summary, summary.startsWith("PASS") ? Color.rgb(0, 128, 0) : Color.RED);
    }

    /**
     * Decodes the golden images with Android's decoder and this app's preprocessing and compares the result
     * with the host-preprocessed golden inputs (catches decoding / normalisation / layout drift).
     */
    private String preprocessingCheck() {
        Preprocessor pre = new Preprocessor(bundle.model.preprocessing);
        double worst = 0;
        int n = 0;
        try {
            for (BundleModel.GoldenSample s : primarySamples()) {
                if (s.imageFile.isEmpty()) {
                    continue;
                }
                Bitmap bmp = BitmapFactory.decodeFile(bundle.resolve(s.imageFile).getPath());
                if (bmp == null) {
                    return "preprocessing check: cannot decode " + s.imageFile;
                }
                worst = Math.max(worst, Preprocessor.maxAbsDiff(pixels(bmp), Npy.read(bundle.resolve(s.inputFile)).data));
                n++;
            }
        } catch (Exception e) {
            return "preprocessing check failed: " + e.getMessage();
        }
        if (n == 0) {
            return "preprocessing check: no golden images in the bundle";
        }
        return String.format(Locale.ROOT, "preprocessing check on %d images: %s (max |diff| %.2g vs host)", n,
                worst <= 1e-4 ? "OK" : "MISMATCH", worst);
    }

    private void classifyNextGolden() {
        if (bundle == null || runner == null) {
            post(predictionView, "No model loaded.", Color.RED);
            return;
        }
        java.util.List<BundleModel.GoldenSample> samples = primarySamples();
        if (samples.isEmpty()) {
            post(predictionView, "The bundle has no golden samples.", 0);
            return;
        }
        BundleModel.GoldenSample s = samples.get(nextGolden % samples.size());
        nextGolden++;
        try {
            float[] input;
            String how;
            if (!s.imageFile.isEmpty() && bundle.resolve(s.imageFile).isFile()) {
                Bitmap bmp = BitmapFactory.decodeFile(bundle.resolve(s.imageFile).getPath());
                if (bmp == null) {
                    throw new IOException("cannot decode " + s.imageFile);
                }
                showImage(bmp);
                input = pixels(bmp);
                how = s.imageFile + " through the app's preprocessing";
            } else {
                input = Npy.read(bundle.resolve(s.inputFile)).data;
                showImage(null);
                how = s.inputFile + " (already preprocessed)";
            }
            float[] logits = runner.run(input);
            String header = how + "\nlabel: " + bundle.model.className(s.label) + ", host prediction: "
                    + bundle.model.className(s.expectedClass);
            post(predictionView, header + "\n" + describe(logits), 0);
        } catch (Exception e) {
            post(predictionView, "Prediction failed: " + e.getMessage(), Color.RED);
        }
    }

    @Override
    protected void onActivityResult(int requestCode, int resultCode, final Intent data) {
        super.onActivityResult(requestCode, resultCode, data);
        if (requestCode != PICK_IMAGE || resultCode != RESULT_OK || data == null || data.getData() == null) {
            return;
        }
        final Uri uri = data.getData();
        worker.execute(new Runnable() {
            @Override
            public void run() {
                classifyUri(uri);
            }
        });
    }

    private void classifyUri(Uri uri) {
        if (bundle == null || runner == null) {
            post(predictionView, "No model loaded.", Color.RED);
            return;
        }
        try {
            Bitmap bmp = decodeSampled(uri);
            showImage(bmp);
            float[] logits = runner.run(pixels(bmp));
            post(predictionView, describe(logits), 0);
        } catch (Exception e) {
            post(predictionView, "Prediction failed: " + e.getMessage(), Color.RED);
        }
    }

    /** Decodes an image, subsampled by a power of two while it stays at least twice the model input size. */
    private Bitmap decodeSampled(Uri uri) throws IOException {
        BitmapFactory.Options bounds = new BitmapFactory.Options();
        bounds.inJustDecodeBounds = true;
        InputStream in = getContentResolver().openInputStream(uri);
        try {
            BitmapFactory.decodeStream(in, null, bounds);
        } finally {
            in.close();
        }
        int need = 2 * Math.max(bundle.model.preprocessing.inputHeight, bundle.model.preprocessing.inputWidth);
        int sample = 1;
        while (Math.min(bounds.outWidth, bounds.outHeight) / (sample * 2) >= need) {
            sample *= 2;
        }
        BitmapFactory.Options opts = new BitmapFactory.Options();
        opts.inSampleSize = sample;
        opts.inPreferredConfig = Bitmap.Config.ARGB_8888;
        in = getContentResolver().openInputStream(uri);
        try {
            Bitmap bmp = BitmapFactory.decodeStream(in, null, opts);
            if (bmp == null) {
                throw new IOException("not an image Android can decode");
            }
            return bmp;
        } finally {
            in.close();
        }
    }

    private float[] pixels(Bitmap bmp) {
        int w = bmp.getWidth();
        int h = bmp.getHeight();
        int[] argb = new int[w * h];
        bmp.getPixels(argb, 0, w, 0, 0, w, h);
        return new Preprocessor(bundle.model.preprocessing).apply(argb, w, h);
    }

    private void showImage(final Bitmap bmp) {
        ui.post(new Runnable() {
            @Override
            public void run() {
                imageView.setImageBitmap(bmp);
            }
        });
    }

    /** Top class and every class probability (softmax of the logits), with decision thresholds when given. */
    private String describe(float[] logits) {
        double[] p = Preprocessor.softmax(logits);
        int top = Preprocessor.argmax(logits);
        StringBuilder sb = new StringBuilder();
        sb.append("prediction: ").append(bundle.model.className(top)).append('\n');
        Map<String, Double> thresholds = bundle.model.decisionThresholds;
        for (int i = 0; i < p.length; i++) {
            String name = bundle.model.className(i);
            sb.append(String.format(Locale.ROOT, "%-24s %6.2f %%", name, 100.0 * p[i]));
            Double t = thresholds.get(name);
            if (t != null) {
                sb.append(p[i] >= t ? "  >= threshold " : "  < threshold ").append(t);
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    private String appVersion() {
        try {
            android.content.pm.PackageInfo info = getPackageManager().getPackageInfo(getPackageName(), 0);
            return info.versionName + " (" + info.versionCode + ")";
        } catch (Exception e) {
            return "unknown";
        }
    }

    /** The golden samples of the artifact this screen runs (every artifact has its own). */
    private java.util.List<BundleModel.GoldenSample> primarySamples() {
        return GoldenSelfTest.samplesFor(bundle.model, bundle.model.primaryArtifact("tflite").file);
    }
}
