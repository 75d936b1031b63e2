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
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

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
     * Unpacks a bundle zip into {@code dest} (entries with unsafe paths are refused) and returns the directory
     * holding model.json: {@code dest} itself or its single top-level folder.
     */
    public static File unzip(InputStream zipStream, File dest) throws IOException, BundleException {
        if (!dest.isDirectory() && !dest.mkdirs()) {
            throw new IOException("cannot create " + dest);
        }
        ZipInputStream zin = new ZipInputStream(zipStream);
        try {
            ZipEntry entry;
            while ((entry = zin.getNextEntry()) != null) {
                File out = safeChild(dest, entry.getName());
                if (entry.isDirectory()) {
                    out.mkdirs();
                    continue;
                }
                File parent = out.getParentFile();
                if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
                    throw new IOException("cannot create " + parent);
                }
                OutputStream os = new FileOutputStream(out);
                try {
                    IoUtil.copy(zin, os);
                } finally {
                    os.close();
                }
            }
        } finally {
            zin.close();
        }
        if (new File(dest, MODEL_JSON).isFile()) {
            return dest;
        }
        File[] children = dest.listFiles();
        if (children != null && children.length == 1 && new File(children[0], MODEL_JSON).isFile()) {
            return children[0];
        }
        throw new BundleException("the downloaded zip has no " + MODEL_JSON + " at its root");
    }
}
