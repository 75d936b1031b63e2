package org.edgeprune.demo.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parsed {@code model.json} of a bundle (edgeprune/schemas.py {@code BundleModelJson}).
 * Unknown fields are ignored so that a newer packager does not break an older app.
 */
public final class BundleModel {
    public static final int SUPPORTED_SCHEMA_VERSION = 1;

    /** One tensor as read back from the artifact (schemas.TensorInfo). */
    public static final class Tensor {
        public final String name;
        public final int[] shape;
        public final String dtype;
        public final String layout;
        /** NaN when the tensor is not quantized. */
        public final double quantScale;
        public final long quantZeroPoint;

        Tensor(Map<String, Object> m) {
            name = Json.getString(m, "name", "");
            shape = Json.getIntArray(m, "shape");
            dtype = Json.getString(m, "dtype", "float32");
            layout = Json.getString(m, "layout", "");
            quantScale = Json.getDouble(m, "quant_scale", Double.NaN);
            quantZeroPoint = Json.getLong(m, "quant_zero_point", 0);
        }
    }

    /** One model file (schemas.BundleArtifact). */
    public static final class Artifact {
        public final String file;
        public final String format;
        public final String precision;
        public final String quantization;
        public final String sha256;
        public final long sizeBytes;
        public final List<Tensor> inputs = new ArrayList<Tensor>();
        public final List<Tensor> outputs = new ArrayList<Tensor>();
        /** passed | rejected | not-run */
        public final String gate;

        Artifact(Map<String, Object> m) {
            file = Json.requireString(m, "file");
            format = Json.requireString(m, "format");
            precision = Json.getString(m, "precision", "");
            quantization = Json.getString(m, "quantization", "");
            sha256 = Json.requireString(m, "sha256").toLowerCase();
            sizeBytes = Json.getLong(m, "size_bytes", -1);
            for (Map<String, Object> t : Json.getObjectList(m, "inputs")) {
                inputs.add(new Tensor(t));
            }
            for (Map<String, Object> t : Json.getObjectList(m, "outputs")) {
                outputs.add(new Tensor(t));
            }
            gate = Json.getString(m, "gate", "not-run");
        }
    }

    /** A real input with the logits the artifact must reproduce (schemas.GoldenSample). */
    public static final class GoldenSample {
        public final String inputFile;
        public final String imageFile;
        public final int label;
        /** The artifact file the expected logits come from ("" in bundles older than this field). */
        public final String artifact;
        public final double[] expectedLogits;
        public final int expectedClass;
        public final double atol;

        GoldenSample(Map<String, Object> m) {
            artifact = Json.getString(m, "artifact", "");
            inputFile = Json.requireString(m, "input_file");
            imageFile = Json.getString(m, "image_file", "");
            label = (int) Json.getLong(m, "label", -1);
            expectedLogits = Json.getDoubleArray(m, "expected_logits");
            expectedClass = (int) Json.getLong(m, "expected_class", -1);
            atol = Json.requireDouble(m, "atol");
            if (expectedLogits.length == 0) {
                throw new Json.JsonException("golden sample " + inputFile + " has no expected_logits");
            }
        }
    }

    /** A file with its checksum (schemas.BundleFile). */
    public static final class FileEntry {
        public final String path;
        public final String sha256;
        public final long sizeBytes;

        FileEntry(Map<String, Object> m) {
            path = Json.requireString(m, "path");
            sha256 = Json.requireString(m, "sha256").toLowerCase();
            sizeBytes = Json.getLong(m, "size_bytes", -1);
        }
    }

    public final int schemaVersion;
    public final String name;
    public final String version;
    public final String createdAt;
    public final String app;
    public final List<Artifact> artifacts;
    public final PreprocessContract preprocessing;
    public final String labelsFile;
    public final List<String> classNames;
    public final Map<String, Double> decisionThresholds;
    public final String intendedUse;
    public final Map<String, Object> metrics;
    public final List<GoldenSample> goldenSamples;
    public final String manifestFile;
    public final List<FileEntry> files;

    private BundleModel(Map<String, Object> m) {
        schemaVersion = (int) Json.getLong(m, "schema_version", 1);
        if (schemaVersion > SUPPORTED_SCHEMA_VERSION) {
            throw new Json.JsonException("model.json schema_version " + schemaVersion
                    + " is newer than this app supports (" + SUPPORTED_SCHEMA_VERSION + "); update the app");
        }
        name = Json.requireString(m, "name");
        version = Json.requireString(m, "version");
        createdAt = Json.getString(m, "created_at", "");
        app = Json.getString(m, "app", "android");
        List<Artifact> arts = new ArrayList<Artifact>();
        for (Map<String, Object> a : Json.getObjectList(m, "artifacts")) {
            arts.add(new Artifact(a));
        }
        if (arts.isEmpty()) {
            throw new Json.JsonException("model.json lists no artifacts");
        }
        artifacts = Collections.unmodifiableList(arts);
        preprocessing = PreprocessContract.fromJson(Json.getObject(m, "preprocessing"));
        labelsFile = Json.getString(m, "labels_file", "labels.txt");
        classNames = Collections.unmodifiableList(Json.getStringList(m, "class_names"));
        Map<String, Double> thresholds = new LinkedHashMap<String, Double>();
        Map<String, Object> rawThresholds = Json.getObject(m, "decision_thresholds");
        for (String key : rawThresholds.keySet()) {
            thresholds.put(key, Json.getDouble(rawThresholds, key, Double.NaN));
        }
        decisionThresholds = Collections.unmodifiableMap(thresholds);
        intendedUse = Json.getString(m, "intended_use", "");
        metrics = Json.getObject(m, "metrics");
        List<GoldenSample> golden = new ArrayList<GoldenSample>();
        for (Map<String, Object> g : Json.getObjectList(m, "golden_samples")) {
            golden.add(new GoldenSample(g));
        }
        goldenSamples = Collections.unmodifiableList(golden);
        manifestFile = Json.getString(m, "manifest_file", "manifest.json");
        List<FileEntry> entries = new ArrayList<FileEntry>();
        for (Map<String, Object> f : Json.getObjectList(m, "files")) {
            entries.add(new FileEntry(f));
        }
        files = Collections.unmodifiableList(entries);
    }

    /** Parses model.json text; throws {@link Json.JsonException} naming the bad field. */
    public static BundleModel parse(String json) {
        return new BundleModel(Json.parseObject(json));
    }

    /**
     * The artifact the app should run: the first one of {@code format} that the gate did not reject
     * (a rejected artifact is only used if nothing else exists, and the UI says so).
     */
    public Artifact primaryArtifact(String format) {
        Artifact fallback = null;
        for (Artifact a : artifacts) {
            if (!a.format.equalsIgnoreCase(format)) {
                continue;
            }
            if (!"rejected".equals(a.gate)) {
                return a;
            }
            if (fallback == null) {
                fallback = a;
            }
        }
        if (fallback == null) {
            throw new Json.JsonException("the bundle has no '" + format + "' artifact");
        }
        return fallback;
    }

    /** Class names from model.json, or "class i" when none are given. */
    public String className(int index) {
        if (index >= 0 && index < classNames.size()) {
            return classNames.get(index);
        }
        return "class " + index;
    }
}
