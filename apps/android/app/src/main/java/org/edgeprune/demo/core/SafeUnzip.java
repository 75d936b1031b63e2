package org.edgeprune.demo.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipInputStream;

/**
 * Unpacks a downloaded bundle zip with the same hygiene the backend applies to every entry:
 * <ul>
 *   <li>names are clean: no NUL or control characters, no backslash, no absolute path, no "." / ".." parts;</li>
 *   <li>the local header names, read while streaming, equal the central directory names, in order;</li>
 *   <li>limits on the real inflated size per entry and in total, on the entry count, and on the
 *       compression ratio (zip bombs);</li>
 *   <li>every entry is listed in model.json's files/artifacts; only model.json and signature.json are not.</li>
 * </ul>
 * Nothing outside {@code dest} is ever written; on refusal the caller deletes {@code dest}.
 */
public final class SafeUnzip {
    /** Limits; the defaults fit any bundle edgeprune writes for a phone. */
    public static final class Limits {
        public long maxEntryBytes = 256L << 20;
        public long maxTotalBytes = 512L << 20;
        public int maxEntries = 10000;
        /** inflated / compressed above this is refused once an entry inflates past {@link #ratioFloorBytes}. */
        public long maxRatio = 100;
        public long ratioFloorBytes = 1L << 20;
        public long maxModelJsonBytes = 16L << 20;
    }

    private SafeUnzip() {
    }

    /** Why a name is unsafe, or null if it is clean. Directory entries end with "/". */
    public static String badName(String name) {
        if (name == null || name.isEmpty()) {
            return "empty name";
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
                return "control character in name";
            }
        }
        if (name.indexOf('\\') >= 0 || name.indexOf(':') >= 0) {
            return "backslash or colon in name";
        }
        if (name.startsWith("/")) {
            return "absolute path";
        }
        String body = name.endsWith("/") ? name.substring(0, name.length() - 1) : name;
        for (String part : body.split("/", -1)) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) {
                return "'.', '..' or empty path part";
            }
        }
        return null;
    }

    /**
     * Checks and unpacks {@code zip} into {@code dest}; returns the directory holding model.json.
     *
     * @throws Bundle.BundleException when any entry breaks a rule (nothing more is written after that)
     */
    public static File unzip(File zip, File dest, Limits limits) throws IOException, Bundle.BundleException {
        List<String> central = new ArrayList<String>();
        Set<String> allowed = new HashSet<String>();
        ZipFile zf;
        try {
            zf = new ZipFile(zip);
        } catch (IOException e) {
            throw new Bundle.BundleException("the download is not a valid zip: " + e.getMessage(), e);
        }
        long[] compressed;
        try {
            String prefix = checkCentral(zf, central, limits);
            compressed = new long[central.size()];
            int i = 0;
            for (Enumeration<? extends ZipEntry> en = zf.entries(); en.hasMoreElements(); i++) {
                compressed[i] = Math.max(1, en.nextElement().getCompressedSize());
            }
            BundleModel model = readModel(zf, prefix + Bundle.MODEL_JSON, limits);
            allowed.add(prefix + Bundle.MODEL_JSON);
            allowed.add(prefix + BundleSignature.FILE);
            for (BundleModel.FileEntry f : model.files) {
                allowed.add(prefix + f.path);
            }
            for (BundleModel.Artifact a : model.artifacts) {
                allowed.add(prefix + a.file);
            }
            for (String name : central) {
                if (!name.endsWith("/") && !allowed.contains(name)) {
                    throw new Bundle.BundleException("zip entry '" + name + "' is not listed in model.json");
                }
            }
        } finally {
            zf.close();
        }
        extract(zip, dest, central, compressed, limits);
        return prefixDir(dest, central);
    }

    /** Validates central directory names; returns "" or "folder/" when everything sits in one top folder. */
    private static String checkCentral(ZipFile zf, List<String> central, Limits limits) throws Bundle.BundleException {
        Set<String> seen = new HashSet<String>();
        for (Enumeration<? extends ZipEntry> en = zf.entries(); en.hasMoreElements(); ) {
            String name = en.nextElement().getName();
            String why = badName(name);
            if (why != null) {
                throw new Bundle.BundleException("unsafe zip entry name " + printable(name) + ": " + why);
            }
            if (!seen.add(name)) {
                throw new Bundle.BundleException("zip entry '" + name + "' appears twice");
            }
            central.add(name);
            if (central.size() > limits.maxEntries) {
                throw new Bundle.BundleException("the zip has more than " + limits.maxEntries + " entries");
            }
        }
        if (seen.contains(Bundle.MODEL_JSON)) {
            return "";
        }
        for (String name : central) {
            if (name.endsWith("/" + Bundle.MODEL_JSON) && name.indexOf('/') == name.length() - 11) {
                String prefix = name.substring(0, name.length() - Bundle.MODEL_JSON.length());
                for (String other : central) {
                    if (!other.startsWith(prefix) && !other.equals(prefix)) {
                        throw new Bundle.BundleException("zip entry '" + other + "' is outside the bundle folder");
                    }
                }
                return prefix;
            }
        }
        throw new Bundle.BundleException("the downloaded zip has no " + Bundle.MODEL_JSON + " at its root");
    }

    private static BundleModel readModel(ZipFile zf, String name, Limits limits) throws IOException,
            Bundle.BundleException {
        ZipEntry e = zf.getEntry(name);
        InputStream in = zf.getInputStream(e);
        try {
            byte[] data = readLimited(in, limits.maxModelJsonBytes, name);
            return BundleModel.parse(new String(data, IoUtil.UTF8));
        } catch (Json.JsonException ex) {
            throw new Bundle.BundleException("invalid " + Bundle.MODEL_JSON + ": " + ex.getMessage(), ex);
        } finally {
            in.close();
        }
    }

    private static byte[] readLimited(InputStream in, long max, String name) throws IOException,
            Bundle.BundleException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = in.read(buf)) > 0) {
            if (out.size() + (long) n > max) {
                throw new Bundle.BundleException("zip entry '" + name + "' inflates past " + max + " bytes");
            }
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    /** Streams the local entries: names must match the central directory; sizes are counted as inflated. */
    private static void extract(File zip, File dest, List<String> central, long[] compressed, Limits limits)
            throws IOException, Bundle.BundleException {
        if (!dest.isDirectory() && !dest.mkdirs()) {
            throw new IOException("cannot create " + dest);
        }
        ZipInputStream zin = new ZipInputStream(new java.io.FileInputStream(zip));
        long total = 0;
        int index = 0;
        byte[] buf = new byte[1 << 16];
        try {
            ZipEntry entry;
            while ((entry = zin.getNextEntry()) != null) {
                String name = entry.getName();
                if (index >= central.size() || !central.get(index).equals(name)) {
                    throw new Bundle.BundleException("zip local header name " + printable(name)
                            + " differs from the central directory");
                }
                File out = Bundle.safeChild(dest, name);
                index++;
                if (name.endsWith("/")) {
                    if (!out.isDirectory() && !out.mkdirs()) {
                        throw new IOException("cannot create " + out);
                    }
                    continue;
                }
                File parent = out.getParentFile();
                if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
                    throw new IOException("cannot create " + parent);
                }
                long size = 0;
                long ratioLimit = Math.max(limits.ratioFloorBytes, compressed[index - 1] * limits.maxRatio);
                OutputStream os = new FileOutputStream(out);
                try {
                    int n;
                    while ((n = zin.read(buf)) > 0) {
                        size += n;
                        total += n;
                        if (size > limits.maxEntryBytes) {
                            throw new Bundle.BundleException("zip entry '" + name + "' inflates past the limit of "
                                    + limits.maxEntryBytes + " bytes");
                        }
                        if (total > limits.maxTotalBytes) {
                            throw new Bundle.BundleException("the zip inflates past the total limit of "
                                    + limits.maxTotalBytes + " bytes");
                        }
                        if (size > ratioLimit) {
                            throw new Bundle.BundleException("zip entry '" + name + "' expands more than "
                                    + limits.maxRatio + "x (zip bomb?)");
                        }
                        os.write(buf, 0, n);
                    }
                } finally {
                    os.close();
                }
            }
        } finally {
            zin.close();
        }
        if (index != central.size()) {
            throw new Bundle.BundleException("the zip's local entries do not match its central directory");
        }
    }

    private static File prefixDir(File dest, List<String> central) {
        if (new File(dest, Bundle.MODEL_JSON).isFile()) {
            return dest;
        }
        for (String name : central) {
            if (name.endsWith("/" + Bundle.MODEL_JSON)) {
                return new File(dest, name.substring(0, name.length() - Bundle.MODEL_JSON.length() - 1));
            }
        }
        return dest;
    }

    private static String printable(String name) {
        StringBuilder sb = new StringBuilder("'");
        for (int i = 0; i < name.length() && i < 200; i++) {
            char c = name.charAt(i);
            boolean control = c < 0x20 || c == 0x7f;
            sb.append(control ? String.format(java.util.Locale.ROOT, "\\x%02x", (int) c) : String.valueOf(c));
        }
        return sb.append("'").toString();
    }
}
