package org.edgeprune.demo.core;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer with no dependencies (android.jar's org.json is only a stub on the JVM).
 *
 * <p>Parsed values map to: object -> {@code LinkedHashMap<String,Object>} (key order kept), array ->
 * {@code ArrayList<Object>}, string -> String, integral number -> Long, other number -> Double,
 * true/false -> Boolean, null -> Java null. The writer accepts the same types plus any Number,
 * float[]/double[]/int[] and CharSequence; non-finite doubles are written as null (JSON has no NaN).
 */
public final class Json {
    private final String text;
    private int pos;

    private Json(String text) {
        this.text = text;
    }

    /** Parses one JSON document; trailing non-space characters are an error. */
    public static Object parse(String text) {
        Json p = new Json(text);
        p.skipSpace();
        Object value = p.readValue();
        p.skipSpace();
        if (p.pos != text.length()) {
            throw p.error("unexpected trailing characters");
        }
        return value;
    }

    /** Parses a document that must be a JSON object. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text) {
        Object value = parse(text);
        if (!(value instanceof Map)) {
            throw new JsonException("expected a JSON object at the top level");
        }
        return (Map<String, Object>) value;
    }

    // ------------------------------------------------------------------ reading

    private JsonException error(String message) {
        return new JsonException(message + " at character " + pos);
    }

    private void skipSpace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                pos++;
            } else {
                break;
            }
        }
    }

    private Object readValue() {
        if (pos >= text.length()) {
            throw error("unexpected end of input");
        }
        char c = text.charAt(pos);
        switch (c) {
            case '{':
                return readObject();
            case '[':
                return readArray();
            case '"':
                return readString();
            case 't':
                expectWord("true");
                return Boolean.TRUE;
            case 'f':
                expectWord("false");
                return Boolean.FALSE;
            case 'n':
                expectWord("null");
                return null;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return readNumber();
                }
                throw error("unexpected character '" + c + "'");
        }
    }

    private void expectWord(String word) {
        if (!text.startsWith(word, pos)) {
            throw error("expected '" + word + "'");
        }
        pos += word.length();
    }

    private Map<String, Object> readObject() {
        Map<String, Object> map = new LinkedHashMap<String, Object>();
        pos++; // '{'
        skipSpace();
        if (peek() == '}') {
            pos++;
            return map;
        }
        while (true) {
            skipSpace();
            if (peek() != '"') {
                throw error("expected a string key");
            }
            String key = readString();
            skipSpace();
            if (peek() != ':') {
                throw error("expected ':'");
            }
            pos++;
            skipSpace();
            map.put(key, readValue());
            skipSpace();
            char c = peek();
            pos++;
            if (c == '}') {
                return map;
            }
            if (c != ',') {
                pos--;
                throw error("expected ',' or '}'");
            }
        }
    }

    private List<Object> readArray() {
        List<Object> list = new ArrayList<Object>();
        pos++; // '['
        skipSpace();
        if (peek() == ']') {
            pos++;
            return list;
        }
        while (true) {
            skipSpace();
            list.add(readValue());
            skipSpace();
            char c = peek();
            pos++;
            if (c == ']') {
                return list;
            }
            if (c != ',') {
                pos--;
                throw error("expected ',' or ']'");
            }
        }
    }

    private char peek() {
        if (pos >= text.length()) {
            throw error("unexpected end of input");
        }
        return text.charAt(pos);
    }

    private String readString() {
        pos++; // opening quote
        StringBuilder sb = new StringBuilder();
        while (true) {
            if (pos >= text.length()) {
                throw error("unterminated string");
            }
            char c = text.charAt(pos++);
            if (c == '"') {
                return sb.toString();
            }
            if (c == '\\') {
                if (pos >= text.length()) {
                    throw error("unterminated escape");
                }
                char e = text.charAt(pos++);
                switch (e) {
                    case '"': sb.append('"'); break;
                    case '\\': sb.append('\\'); break;
                    case '/': sb.append('/'); break;
                    case 'b': sb.append('\b'); break;
                    case 'f': sb.append('\f'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case 't': sb.append('\t'); break;
                    case 'u':
                        if (pos + 4 > text.length()) {
                            throw error("short unicode escape");
                        }
                        try {
                            sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("bad unicode escape");
                        }
                        pos += 4;
                        break;
                    default:
                        throw error("bad escape '\\" + e + "'");
                }
            } else if (c < 0x20) {
                throw error("control character in string");
            } else {
                sb.append(c);
            }
        }
    }

    private Object readNumber() {
        int start = pos;
        boolean integral = true;
        if (text.charAt(pos) == '-') {
            pos++;
        }
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c >= '0' && c <= '9') {
                pos++;
            } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                integral = false;
                pos++;
            } else {
                break;
            }
        }
        String s = text.substring(start, pos);
        try {
            if (integral) {
                try {
                    return Long.valueOf(s);
                } catch (NumberFormatException tooBig) {
                    return Double.valueOf(s);
                }
            }
            return Double.valueOf(s);
        } catch (NumberFormatException ex) {
            throw new JsonException("bad number '" + s + "' at character " + start);
        }
    }

    // ------------------------------------------------------------------ writing

    /** Compact JSON text of {@code value}. */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        writeValue(sb, value, -1, 0);
        return sb.toString();
    }

    /** Indented JSON text (2 spaces), convenient for files a human may read. */
    public static String writePretty(Object value) {
        StringBuilder sb = new StringBuilder();
        writeValue(sb, value, 2, 0);
        sb.append('\n');
        return sb.toString();
    }

    private static void newline(StringBuilder sb, int indent, int depth) {
        if (indent < 0) {
            return;
        }
        sb.append('\n');
        for (int i = 0; i < indent * depth; i++) {
            sb.append(' ');
        }
    }

    @SuppressWarnings("unchecked")
    private static void writeValue(StringBuilder sb, Object v, int indent, int depth) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean) {
            sb.append(((Boolean) v).booleanValue() ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            writeDouble(sb, ((Number) v).doubleValue());
        } else if (v instanceof Number) {
            sb.append(((Number) v).longValue());
        } else if (v instanceof CharSequence) {
            writeString(sb, v.toString());
        } else if (v instanceof Map) {
            Map<Object, Object> map = (Map<Object, Object>) v;
            sb.append('{');
            Iterator<Map.Entry<Object, Object>> it = map.entrySet().iterator();
            boolean any = it.hasNext();
            while (it.hasNext()) {
                Map.Entry<Object, Object> e = it.next();
                newline(sb, indent, depth + 1);
                writeString(sb, String.valueOf(e.getKey()));
                sb.append(indent < 0 ? ":" : ": ");
                writeValue(sb, e.getValue(), indent, depth + 1);
                if (it.hasNext()) {
                    sb.append(',');
                }
            }
            if (any) {
                newline(sb, indent, depth);
            }
            sb.append('}');
        } else if (v instanceof List) {
            writeList(sb, (List<Object>) v, indent, depth);
        } else if (v instanceof float[]) {
            float[] a = (float[]) v;
            List<Object> list = new ArrayList<Object>(a.length);
            for (float f : a) {
                list.add(Double.valueOf(f));
            }
            writeList(sb, list, indent, depth);
        } else if (v instanceof double[]) {
            double[] a = (double[]) v;
            List<Object> list = new ArrayList<Object>(a.length);
            for (double d : a) {
                list.add(Double.valueOf(d));
            }
            writeList(sb, list, indent, depth);
        } else if (v instanceof int[]) {
            int[] a = (int[]) v;
            List<Object> list = new ArrayList<Object>(a.length);
            for (int i : a) {
                list.add(Long.valueOf(i));
            }
            writeList(sb, list, indent, depth);
        } else if (v instanceof Object[]) {
            List<Object> list = new ArrayList<Object>();
            for (Object o : (Object[]) v) {
                list.add(o);
            }
            writeList(sb, list, indent, depth);
        } else {
            throw new JsonException("cannot write a " + v.getClass().getName() + " as JSON");
        }
    }

    private static void writeList(StringBuilder sb, List<Object> list, int indent, int depth) {
        sb.append('[');
        for (int i = 0; i < list.size(); i++) {
            newline(sb, indent, depth + 1);
            writeValue(sb, list.get(i), indent, depth + 1);
            if (i + 1 < list.size()) {
                sb.append(',');
            }
        }
        if (!list.isEmpty()) {
            newline(sb, indent, depth);
        }
        sb.append(']');
    }

    private static void writeDouble(StringBuilder sb, double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            sb.append("null");
        } else if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            // keep a fraction so readers see a float, e.g. 3.0 rather than 3
            sb.append((long) d).append(".0");
        } else {
            sb.append(Double.toString(d)); // shortest repr that round-trips; "1.0E-5" is valid JSON
        }
    }

    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (c < 0x20) {
                        String hex = Integer.toHexString(c);
                        sb.append("\\u");
                        for (int k = hex.length(); k < 4; k++) {
                            sb.append('0');
                        }
                        sb.append(hex);
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    // ------------------------------------------------------------------ typed access

    /** Thrown for malformed JSON or a missing / mistyped field. */
    public static final class JsonException extends RuntimeException {
        public JsonException(String message) {
            super(message);
        }
    }

    public static Object require(Map<String, Object> obj, String key) {
        if (!obj.containsKey(key)) {
            throw new JsonException("missing field '" + key + "'");
        }
        return obj.get(key);
    }

    public static String getString(Map<String, Object> obj, String key, String fallback) {
        Object v = obj.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof String)) {
            throw new JsonException("field '" + key + "' must be a string");
        }
        return (String) v;
    }

    public static String requireString(Map<String, Object> obj, String key) {
        Object v = require(obj, key);
        if (!(v instanceof String)) {
            throw new JsonException("field '" + key + "' must be a string");
        }
        return (String) v;
    }

    public static double getDouble(Map<String, Object> obj, String key, double fallback) {
        Object v = obj.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Number)) {
            throw new JsonException("field '" + key + "' must be a number");
        }
        return ((Number) v).doubleValue();
    }

    public static double requireDouble(Map<String, Object> obj, String key) {
        if (obj.get(key) == null) {
            throw new JsonException("missing field '" + key + "'");
        }
        return getDouble(obj, key, 0.0);
    }

    public static long getLong(Map<String, Object> obj, String key, long fallback) {
        Object v = obj.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Number)) {
            throw new JsonException("field '" + key + "' must be a number");
        }
        double d = ((Number) v).doubleValue();
        if (d != Math.rint(d)) {
            throw new JsonException("field '" + key + "' must be an integer");
        }
        return ((Number) v).longValue();
    }

    public static boolean getBool(Map<String, Object> obj, String key, boolean fallback) {
        Object v = obj.get(key);
        if (v == null) {
            return fallback;
        }
        if (!(v instanceof Boolean)) {
            throw new JsonException("field '" + key + "' must be true or false");
        }
        return ((Boolean) v).booleanValue();
    }

    @SuppressWarnings("unchecked")
    public static Map<String, Object> getObject(Map<String, Object> obj, String key) {
        Object v = obj.get(key);
        if (v == null) {
            return new LinkedHashMap<String, Object>();
        }
        if (!(v instanceof Map)) {
            throw new JsonException("field '" + key + "' must be an object");
        }
        return (Map<String, Object>) v;
    }

    @SuppressWarnings("unchecked")
    public static List<Object> getList(Map<String, Object> obj, String key) {
        Object v = obj.get(key);
        if (v == null) {
            return new ArrayList<Object>();
        }
        if (!(v instanceof List)) {
            throw new JsonException("field '" + key + "' must be an array");
        }
        return (List<Object>) v;
    }

    /** Elements of an array field that must all be objects. */
    @SuppressWarnings("unchecked")
    public static List<Map<String, Object>> getObjectList(Map<String, Object> obj, String key) {
        List<Map<String, Object>> out = new ArrayList<Map<String, Object>>();
        for (Object o : getList(obj, key)) {
            if (!(o instanceof Map)) {
                throw new JsonException("every element of '" + key + "' must be an object");
            }
            out.add((Map<String, Object>) o);
        }
        return out;
    }

    public static List<String> getStringList(Map<String, Object> obj, String key) {
        List<String> out = new ArrayList<String>();
        for (Object o : getList(obj, key)) {
            if (!(o instanceof String)) {
                throw new JsonException("every element of '" + key + "' must be a string");
            }
            out.add((String) o);
        }
        return out;
    }

    public static double[] getDoubleArray(Map<String, Object> obj, String key) {
        List<Object> list = getList(obj, key);
        double[] out = new double[list.size()];
        for (int i = 0; i < out.length; i++) {
            Object o = list.get(i);
            if (!(o instanceof Number)) {
                throw new JsonException("every element of '" + key + "' must be a number");
            }
            out[i] = ((Number) o).doubleValue();
        }
        return out;
    }

    public static int[] getIntArray(Map<String, Object> obj, String key) {
        double[] d = getDoubleArray(obj, key);
        int[] out = new int[d.length];
        for (int i = 0; i < d.length; i++) {
            out[i] = (int) d[i];
        }
        return out;
    }
}
