package org.edgeprune.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

import org.junit.Test;

/**
 * The results JSON uses the Measurement field names. With -Dedgeprune.out=DIR the test also writes both
 * variants there so the Python test validates them with edgeprune.schemas.Measurement.
 */
public class MeasurementJsonTest {
    static final Set<String> MEASUREMENT_FIELDS = new LinkedHashSet<String>(Arrays.asList("schema_version", "id",
            "created_at", "artifact_name", "artifact_sha256", "device", "runtime", "threads", "delegate", "warmup",
            "runs", "latency", "timing_meaningful", "init_ms", "first_inference_ms", "peak_rss_mb", "load_delta_mb",
            "pss_mb", "extra"));

    static MeasurementJson sample() {
        MeasurementJson m = new MeasurementJson();
        m.artifactName = "model.tflite";
        m.artifactSha256 = Hashing.sha256(new byte[] {1, 2, 3});
        m.runtime = "litert-android 2.3.0 (Interpreter API)";
        m.threads = 4;
        m.warmup = 5;
        m.runs = 7;
        m.latency = Stats.of(new double[] {3.1, 2.9, 3.0, 3.4, 2.8, 3.0, 5.5});
        m.initMs = 12.5;
        m.firstInferenceMs = 9.25;
        m.pssMb = 88.0;
        m.loadDeltaMb = 4.5;
        m.peakRssMb = 120.0;
        m.device.id = "a1b2c3";
        m.device.model = "Google Pixel 8";
        m.device.abi = "arm64-v8a";
        m.device.os = "Android 15 (API 35)";
        m.device.soc = "Google Tensor G3";
        m.device.cores = 9;
        m.device.cpuGovernor = "schedutil";
        m.device.batteryTempC = 31.5;
        m.device.extra.put("sdk_int", Long.valueOf(35));
        m.extra.put("source", "BenchmarkActivity");
        return m;
    }

    @Test
    public void writesTheMeasurementFieldsOnly() throws Exception {
        MeasurementJson m = sample();
        Map<String, Object> json = Json.parseObject(m.toJsonText());
        assertEquals(MEASUREMENT_FIELDS, json.keySet());
        @SuppressWarnings("unchecked")
        Map<String, Object> device = (Map<String, Object>) json.get("device");
        assertEquals("android-app", device.get("kind"));
        assertEquals(Long.valueOf(9), device.get("cores"));
        assertEquals(31.5, ((Number) device.get("battery_temp_c")).doubleValue(), 0.0);
        @SuppressWarnings("unchecked")
        Map<String, Object> latency = (Map<String, Object>) json.get("latency");
        assertEquals(Long.valueOf(7), latency.get("n"));
        assertEquals(m.latency.p50Ms, ((Number) latency.get("p50_ms")).doubleValue(), 0.0);
        assertEquals(32, ((String) json.get("id")).length());
        assertTrue(((String) json.get("created_at")).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\+00:00"));
        maybeWrite("measurement_ok.json", m);
    }

    @Test
    public void aFailedRunHasAnErrorAndNoTimings() throws Exception {
        MeasurementJson m = new MeasurementJson();
        m.artifactName = "model.tflite";
        m.runtime = "none (offline build: runtime not bundled in this build)";
        m.threads = 4;
        m.warmup = 5;
        m.runs = 50;
        m.error = "runtime not bundled in this build";
        Map<String, Object> json = Json.parseObject(m.toJsonText());
        assertEquals("runtime not bundled in this build", json.get("error"));
        assertNull(json.get("latency"));
        assertNull(json.get("init_ms"));
        assertTrue(json.containsKey("device"));
        json.remove("error");
        assertEquals(MEASUREMENT_FIELDS, json.keySet());
        assertFalse(m.toJsonText().contains("NaN"));
        maybeWrite("measurement_error.json", m);
    }

    private static void maybeWrite(String name, MeasurementJson m) throws Exception {
        String out = System.getProperty("edgeprune.out");
        if (out != null && !out.isEmpty()) {
            IoUtil.writeTextAtomic(new File(out, name), m.toJsonText());
        }
    }
}
