package org.edgeprune.demo.core;

/**
 * Standard base64 (RFC 4648, with padding). java.util.Base64 needs API 26 and the offline build compiles
 * against API 23, so the app carries this small codec.
 */
public final class Base64Codec {
    private static final char[] ALPHABET =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".toCharArray();

    private Base64Codec() {
    }

    private static int value(char c) {
        if (c >= 'A' && c <= 'Z') {
            return c - 'A';
        }
        if (c >= 'a' && c <= 'z') {
            return c - 'a' + 26;
        }
        if (c >= '0' && c <= '9') {
            return c - '0' + 52;
        }
        if (c == '+') {
            return 62;
        }
        if (c == '/') {
            return 63;
        }
        return -1;
    }

    /** Decodes padded base64; throws IllegalArgumentException on any other character or bad length. */
    public static byte[] decode(String text) {
        String s = text.trim();
        if (s.length() % 4 != 0) {
            throw new IllegalArgumentException("base64 length must be a multiple of 4");
        }
        int pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
        byte[] out = new byte[s.length() / 4 * 3 - pad];
        int o = 0;
        for (int i = 0; i < s.length(); i += 4) {
            int acc = 0;
            for (int j = 0; j < 4; j++) {
                char c = s.charAt(i + j);
                int v;
                if (c == '=' && i + 4 == s.length() && j >= 4 - pad) {
                    v = 0;
                } else {
                    v = value(c);
                    if (v < 0) {
                        throw new IllegalArgumentException("invalid base64 character '" + c + "'");
                    }
                }
                acc = (acc << 6) | v;
            }
            for (int k = 2; k >= 0 && o < out.length; k--) {
                if (i / 4 * 3 + (2 - k) < out.length) {
                    out[o++] = (byte) (acc >> (8 * k));
                }
            }
        }
        return out;
    }

    public static String encode(byte[] data) {
        StringBuilder sb = new StringBuilder((data.length + 2) / 3 * 4);
        for (int i = 0; i < data.length; i += 3) {
            int n = Math.min(3, data.length - i);
            int acc = (data[i] & 0xff) << 16;
            if (n > 1) {
                acc |= (data[i + 1] & 0xff) << 8;
            }
            if (n > 2) {
                acc |= data[i + 2] & 0xff;
            }
            for (int k = 0; k < 4; k++) {
                sb.append(k <= n ? ALPHABET[(acc >> (18 - 6 * k)) & 0x3f] : '=');
            }
        }
        return sb.toString();
    }
}
