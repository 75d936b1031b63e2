package org.edgeprune.demo.core;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads numpy {@code .npy} files (format versions 1-3) holding float32 (or float64 / uint8, converted to
 * float) in C order, as written by {@code numpy.save}. The golden inputs of a bundle are float32.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    public final int[] shape;
    public final float[] data;
    /** The numpy dtype string of the file, e.g. "&lt;f4". */
    public final String descr;

    private Npy(int[] shape, float[] data, String descr) {
        this.shape = shape;
        this.data = data;
        this.descr = descr;
    }

    public static Npy read(File file) throws IOException {
        return parse(IoUtil.readFile(file));
    }

    public static Npy parse(byte[] bytes) throws IOException {
        if (bytes.length < 10) {
            throw new IOException("not a .npy file (too short)");
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (bytes[i] != MAGIC[i]) {
                throw new IOException("not a .npy file (bad magic)");
            }
        }
        int major = bytes[6] & 0xff;
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen;
        int headerStart;
        if (major == 1) {
            headerLen = bb.getShort(8) & 0xffff;
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            headerLen = bb.getInt(8);
            headerStart = 12;
        } else {
            throw new IOException("unsupported .npy version " + major);
        }
        if (headerLen < 0 || headerStart + headerLen > bytes.length) {
            throw new IOException("truncated .npy header");
        }
        String header = new String(bytes, headerStart, headerLen, major == 3 ? IoUtil.UTF8 : Charsets.LATIN1);
        String descr = group(DESCR, header, "descr");
        if ("True".equals(group(FORTRAN, header, "fortran_order"))) {
            throw new IOException("Fortran-order .npy is not supported; save with numpy.ascontiguousarray");
        }
        int[] shape = parseShape(group(SHAPE, header, "shape"));
        long count = 1;
        for (int d : shape) {
            count *= d;
        }
        if (count > Integer.MAX_VALUE) {
            throw new IOException(".npy array too large");
        }
        int n = (int) count;
        int offset = headerStart + headerLen;
        float[] out = new float[n];
        ByteOrder order = descr.startsWith(">") ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        String kind = descr.substring(1);
        int itemSize;
        if ("f4".equals(kind)) {
            itemSize = 4;
        } else if ("f8".equals(kind)) {
            itemSize = 8;
        } else if ("u1".equals(kind)) {
            itemSize = 1;
        } else {
            throw new IOException("unsupported .npy dtype '" + descr + "' (expected float32)");
        }
        if (offset + (long) n * itemSize > bytes.length) {
            throw new IOException("truncated .npy data: expected " + n + " values of " + descr);
        }
        ByteBuffer data = ByteBuffer.wrap(bytes, offset, n * itemSize).slice().order(order);
        for (int i = 0; i < n; i++) {
            if (itemSize == 4) {
                out[i] = data.getFloat(4 * i);
            } else if (itemSize == 8) {
                out[i] = (float) data.getDouble(8 * i);
            } else {
                out[i] = data.get(i) & 0xff;
            }
        }
        return new Npy(shape, out, descr);
    }

    private static String group(Pattern p, String header, String key) throws IOException {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new IOException(".npy header has no '" + key + "'");
        }
        return m.group(1);
    }

    private static int[] parseShape(String text) throws IOException {
        List<Integer> dims = new ArrayList<Integer>();
        for (String part : text.split(",")) {
            String s = part.trim();
            if (s.isEmpty()) {
                continue;
            }
            try {
                dims.add(Integer.valueOf(s.endsWith("L") ? s.substring(0, s.length() - 1) : s));
            } catch (NumberFormatException e) {
                throw new IOException("bad .npy shape '" + text + "'");
            }
        }
        int[] shape = new int[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = dims.get(i);
        }
        return shape;
    }

    /** Latin-1 without java.nio.charset.StandardCharsets constants beyond API 19. */
    private static final class Charsets {
        static final java.nio.charset.Charset LATIN1 = java.nio.charset.Charset.forName("ISO-8859-1");
    }
}
