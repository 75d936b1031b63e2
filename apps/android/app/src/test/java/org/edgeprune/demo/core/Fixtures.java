package org.edgeprune.demo.core;

import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * Locates the fixtures written by tests/android/make_fixture_bundle.py (Python side of edgeprune), passed
 * as {@code -Dedgeprune.fixtures=DIR}. Tests that need them are skipped (JUnit assumption) without it.
 */
final class Fixtures {
    static final String PROPERTY = "edgeprune.fixtures";

    private Fixtures() {
    }

    static File dir() {
        String d = System.getProperty(PROPERTY);
        assumeTrue("fixtures not given: run with -D" + PROPERTY + "=DIR (tests/android/make_fixture_bundle.py DIR)",
                d != null && !d.isEmpty() && new File(d).isDirectory());
        return new File(d);
    }

    static File file(String name) {
        return new File(dir(), name);
    }

    static Map<String, Object> object(String name) throws IOException {
        return Json.parseObject(IoUtil.readText(file(name)));
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(String name) throws IOException {
        return (List<Object>) Json.parse(IoUtil.readText(file(name)));
    }

    /** Recursive copy, used to tamper with a private copy of the fixture bundle. */
    static void copyTree(File src, File dst) throws IOException {
        if (src.isDirectory()) {
            if (!dst.isDirectory() && !dst.mkdirs()) {
                throw new IOException("cannot create " + dst);
            }
            String[] names = src.list();
            if (names != null) {
                for (String n : names) {
                    copyTree(new File(src, n), new File(dst, n));
                }
            }
        } else {
            IoUtil.writeAtomic(dst, IoUtil.readFile(src));
        }
    }

    static double[] doubles(Object list) {
        @SuppressWarnings("unchecked")
        List<Object> l = (List<Object>) list;
        double[] out = new double[l.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) l.get(i)).doubleValue();
        }
        return out;
    }
}
