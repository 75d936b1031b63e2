package org.edgeprune.demo.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.Charset;

/** Stream and file helpers that work on Android API 24 (no java.nio.file). */
public final class IoUtil {
    public static final Charset UTF8 = Charset.forName("UTF-8");

    private IoUtil() {
    }

    public static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        copy(in, out);
        return out.toByteArray();
    }

    public static byte[] readFile(File file) throws IOException {
        InputStream in = new FileInputStream(file);
        try {
            return readAll(in);
        } finally {
            in.close();
        }
    }

    public static String readText(File file) throws IOException {
        return new String(readFile(file), UTF8);
    }

    public static long copy(InputStream in, OutputStream out) throws IOException {
        byte[] buf = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
            total += n;
        }
        return total;
    }

    /**
     * Writes {@code data} to a temporary file beside {@code target}, syncs it and renames it into place,
     * so a reader never sees a half-written file.
     */
    public static void writeAtomic(File target, byte[] data) throws IOException {
        File dir = target.getAbsoluteFile().getParentFile();
        if (dir != null && !dir.isDirectory() && !dir.mkdirs()) {
            throw new IOException("cannot create directory " + dir);
        }
        File tmp = new File(dir, "." + target.getName() + ".part");
        FileOutputStream out = new FileOutputStream(tmp);
        try {
            out.write(data);
            out.getFD().sync();
        } finally {
            out.close();
        }
        if (!tmp.renameTo(target)) {
            tmp.delete();
            throw new IOException("cannot rename " + tmp + " to " + target);
        }
    }

    public static void writeTextAtomic(File target, String text) throws IOException {
        writeAtomic(target, text.getBytes(UTF8));
    }

    /** Deletes a file or a directory tree; returns quietly when it does not exist. */
    public static void deleteTree(File f) {
        File[] children = f.listFiles();
        if (children != null) {
            for (File c : children) {
                deleteTree(c);
            }
        }
        f.delete();
    }
}
