package org.edgeprune.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.Test;

public class JsonTest {
    @Test
    public void roundTripKeepsStructureTypesAndOrder() {
        Map<String, Object> inner = new LinkedHashMap<String, Object>();
        inner.put("z", Long.valueOf(-42));
        inner.put("a", Double.valueOf(1e-7));
        inner.put("pi", Double.valueOf(Math.PI));
        inner.put("flag", Boolean.FALSE);
        inner.put("nothing", null);
        List<Object> list = new ArrayList<Object>();
        list.add("tab\there \"quoted\" back\\slash \u00e9\u4e2d \u0001");
        list.add(Long.valueOf(Long.MAX_VALUE / 2));
        list.add(inner);
        list.add(new ArrayList<Object>());
        Map<String, Object> doc = new LinkedHashMap<String, Object>();
        doc.put("list", list);
        doc.put("empty", new LinkedHashMap<String, Object>());
        doc.put("float", Double.valueOf(3.0));

        for (String text : new String[] {Json.write(doc), Json.writePretty(doc)}) {
            Map<String, Object> back = Json.parseObject(text);
            assertEquals(doc, back);
            assertEquals("[list, empty, float]", back.keySet().toString());
            @SuppressWarnings("unchecked")
            Map<String, Object> in2 = (Map<String, Object>) ((List<Object>) back.get("list")).get(2);
            assertEquals("[z, a, pi, flag, nothing]", in2.keySet().toString());
            assertTrue(back.get("float") instanceof Double);
        }
    }

    @Test
    public void parsesNumbersEscapesAndLiterals() {
        List<?> v = (List<?>) Json.parse(" [0, -1, 2.5, 1e3, -4E-2, 123456789012345678901, \"\\u0041\\n\\/\", true, null] ");
        assertEquals(Long.valueOf(0), v.get(0));
        assertEquals(Long.valueOf(-1), v.get(1));
        assertEquals(2.5, (Double) v.get(2), 0.0);
        assertEquals(1000.0, (Double) v.get(3), 0.0);
        assertEquals(-0.04, (Double) v.get(4), 0.0);
        assertEquals(1.2345678901234568e20, (Double) v.get(5), 1e5);
        assertEquals("A\n/", v.get(6));
        assertEquals(Boolean.TRUE, v.get(7));
        assertNull(v.get(8));
    }

    @Test
    public void nonFiniteNumbersBecomeNull() {
        List<Object> l = new ArrayList<Object>();
        l.add(Double.NaN);
        l.add(Double.POSITIVE_INFINITY);
        assertEquals("[null,null]", Json.write(l));
    }

    @Test
    public void floatArraysRoundTripExactly() {
        float[] a = {0.1f, -3.4028235e38f, 1.4e-45f, 0f};
        List<?> back = (List<?>) Json.parse(Json.write(a));
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], ((Number) back.get(i)).floatValue(), 0.0f);
        }
    }

    @Test
    public void rejectsMalformedDocuments() {
        String[] bad = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "\"open", "tru", "[1] x", "{1:2}", "\"\\x\"", "-"};
        for (String s : bad) {
            try {
                Json.parse(s);
                fail("accepted malformed JSON: " + s);
            } catch (Json.JsonException expected) {
                assertTrue(expected.getMessage(), expected.getMessage().length() > 0);
            }
        }
    }

    @Test
    public void typedAccessNamesTheBadField() {
        Map<String, Object> m = Json.parseObject("{\"n\": \"x\", \"f\": 1.5}");
        try {
            Json.getLong(m, "n", 0);
            fail();
        } catch (Json.JsonException e) {
            assertTrue(e.getMessage().contains("'n'"));
        }
        try {
            Json.getLong(m, "f", 0);
            fail();
        } catch (Json.JsonException e) {
            assertTrue(e.getMessage().contains("integer"));
        }
        try {
            Json.requireString(m, "missing");
            fail();
        } catch (Json.JsonException e) {
            assertTrue(e.getMessage().contains("missing"));
        }
    }
}
