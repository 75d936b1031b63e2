package org.edgeprune.demo.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A bundle directory on disk: {@code model.json} plus the files it lists. {@link #verify()} recomputes the
 * sha256 (and size) of every listed file and of every artifact, so a tampered or truncated file is refused.
 */
public final class Bundle {
    public static final String MODEL_JSON = "model.json";

    /** A bundle that cannot be used: missing file, bad checksum, unsafe path or bad model.json. */
    public static final class BundleException extends Exception {
        public BundleException(String message) {
            super(message);
        }

        public BundleException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    public final File root;
    public final BundleModel model;
    private boolean verified;
    private String signedBy = "";

    private Bundle(File root, BundleModel model) {
        this.root = root;
        this.model = model;
    }

    /** Reads and parses {@code root/model.json} (does not verify checksums; call {@link #verify()}). */
    public static Bundle open(File root) throws BundleException {
        File json = new File(root, MODEL_JSON);
        if (!json.isFile()) {
            throw new BundleException("no " + MODEL_JSON + " in " + root);
        }
        try {
            return new Bundle(root, BundleModel.parse(IoUtil.readText(json)));
        } catch (IOException e) {
            throw new BundleException("cannot read " + json + ": " + e.getMessage(), e);
        } catch (Json.JsonException e) {
            throw new BundleException("invalid " + MODEL_JSON + ": " + e.getMessage(), e);
        }
    }

    /**
     * Opens a bundle, checks its Ed25519 signature against the pinned publisher key, then every sha256.
     * Used for every bundle that arrives from outside the APK.
     */
    public static Bundle openTrusted(File root, byte[] pinnedKey) throws BundleException {
        BundleSignature.verify(root, pinnedKey);
        Bundle b = open(root);
        b.signedBy = BundleSignature.keyId(pinnedKey);
        b.verify();
        return b;
    }

    /** The key id that signed this bundle ("" when the signature was not checked). */
    public String signedBy() {
        return signedBy;
    }

    /** Opens and verifies in one step. */
    public static Bundle openVerified(File root) throws BundleException {
        Bundle b = open(root);
        b.verify();
        return b;
    }

    /**
     * Checks every entry of {@code files[]} and every artifact against its recorded sha256 and size.
     *
     * @return the relative paths that were checked, in order
     */
    public List<String> verify() throws BundleException {
        Map<String, String[]> expected = new LinkedHashMap<String, String[]>();
        for (BundleModel.FileEntry f : model.files) {
            if (MODEL_JSON.equals(f.path)) {
                continue; // a file cannot carry its own checksum; model.json is parsed, not hashed
            }
            expected.put(f.path, new String[] {f.sha256, Long.toString(f.sizeBytes)});
        }
        for (BundleModel.Artifact a : model.artifacts) {
            String[] prior = expected.get(a.file);
            if (prior != null && !prior[0].equals(a.sha256)) {
                throw new BundleException("model.json gives two different sha256 values for " + a.file);
            }
            expected.put(a.file, new String[] {a.sha256, Long.toString(a.sizeBytes)});
        }
        List<String> checked = new ArrayList<String>();
        for (Map.Entry<String, String[]> e : expected.entrySet()) {
            String rel = e.getKey();
            File f = resolve(rel);
            if (!f.isFile()) {
                throw new BundleException("bundle file missing: " + rel);
            }
            long size = Long.parseLong(e.getValue()[1]);
            if (size >= 0 && f.length() != size) {
                throw new BundleException("bundle file " + rel + " has " + f.length() + " bytes, model.json says "
                        + size + " (truncated or tampered)");
            }
            String actual;
            try {
                actual = Hashing.sha256(f);
            } catch (IOException ex) {
                throw new BundleException("cannot read " + rel + ": " + ex.getMessage(), ex);
            }
            if (!actual.equals(e.getValue()[0])) {
                throw new BundleException("sha256 mismatch for " + rel + " (tampered or corrupted): expected "
                        + e.getValue()[0] + ", got " + actual);
            }
            checked.add(rel);
        }
        verified = true;
        return checked;
    }

    public boolean isVerified() {
        return verified;
    }

    /** A file inside the bundle; rejects absolute paths and ".." so model.json cannot point outside. */
    public File resolve(String relative) throws BundleException {
        return safeChild(root, relative);
    }

    static File safeChild(File dir, String relative) throws BundleException {
        String norm = relative.replace('\\', '/');
        if (norm.isEmpty() || norm.startsWith("/") || norm.contains(":")) {
            throw new BundleException("unsafe path in bundle: '" + relative + "'");
        }
        for (String part : norm.split("/")) {
            if (part.equals("..")) {
                throw new BundleException("unsafe path in bundle: '" + relative + "'");
            }
        }
        return new File(dir, norm);
    }

    /** Labels from {@code labels_file} (one per line), falling back to {@code class_names}. */
    public List<String> labels() {
        try {
            File f = resolve(model.labelsFile);
            if (f.isFile()) {
                List<String> out = new ArrayList<String>();
                for (String line : IoUtil.readText(f).split("\n")) {
                    String s = line.trim();
                    if (!s.isEmpty()) {
                        out.add(s);
                    }
                }
                if (!out.isEmpty()) {
                    return out;
                }
            }
        } catch (IOException e) {
            // fall through to class_names
        } catch (BundleException e) {
            // fall through to class_names
        }
        return model.classNames;
    }

    /**
     * Unpacks a downloaded bundle zip with every hygiene rule and size limit of {@link SafeUnzip}; returns the
     * directory holding model.json.
     */
    public static File unzip(File zip, File dest) throws IOException, BundleException {
        return SafeUnzip.unzip(zip, dest, new SafeUnzip.Limits());
    }

    /**
     * Unpacks a bundle zip stream into {@code dest} (entries with unsafe paths are refused) and returns the
     * directory holding model.json: {@code dest} itself or its single top-level folder. Downloads use
     * {@link #unzip(File, File)}, which also applies size limits and the model.json listing.
     */
    public static File unzip(InputStream zipStream, File dest) throws IOException, BundleException {
        SafeUnzip.Limits limits = new SafeUnzip.Limits();
        File parent = dest.getAbsoluteFile().getParentFile();
        File tmp = File.createTempFile(".bundle-", ".zip", parent);
        try {
            OutputStream os = new FileOutputStream(tmp);
            try {
                byte[] buf = new byte[1 << 16];
                long total = 0;
                int n;
                while ((n = zipStream.read(buf)) > 0) {
                    total += n;
                    if (total > limits.maxTotalBytes) {
                        throw new BundleException("the zip is larger than " + limits.maxTotalBytes + " bytes");
                    }
                    os.write(buf, 0, n);
                }
            } finally {
                os.close();
            }
            return SafeUnzip.unzip(tmp, dest, limits);
        } finally {
            tmp.delete();
        }
    }
}
