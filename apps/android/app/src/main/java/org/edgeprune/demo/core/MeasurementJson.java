package org.edgeprune.demo.core;

import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.TimeZone;
import java.util.UUID;

/**
 * Builds the results JSON of the benchmark with the field names of edgeprune/schemas.py {@code Measurement}
 * (+ {@code LatencyStats}, {@code DeviceFingerprint} with kind "android-app"), so the host profiler and the
 * backend read phone results like any other measurement.
 *
 * <p>A failed benchmark (for example the offline build, which has no runtime) gets a top-level
 * {@code "error"} field and no timings. Measurement itself forbids extra fields, so a reader must check
 * {@code error} first and must not upload such a file as a measurement.
 */
public final class MeasurementJson {
    public static final int SCHEMA_VERSION = 1;
    public static final String DEVICE_KIND = "android-app";

    /** schemas.DeviceFingerprint; {@link #extra} holds additional allowed keys (the schema allows extras). */
    public static final class Device {
        public String id = "";
        public String model = "";
        public String abi = "";
        public String os = "";
        public String soc = "";
        public Integer cores;
        public String cpuGovernor = "";
        public Double batteryTempC;
        public final Map<String, Object> extra = new LinkedHashMap<String, Object>();

        public Map<String, Object> toJson() {
            Map<String, Object> m = new LinkedHashMap<String, Object>();
            m.put("kind", DEVICE_KIND);
            m.put("id", id);
            m.put("model", model);
            m.put("abi", abi);
            m.put("os", os);
            m.put("soc", soc);
            m.put("cores", cores == null ? null : Long.valueOf(cores.longValue()));
            m.put("cpu_governor", cpuGovernor);
            m.put("battery_temp_c", batteryTempC);
            for (Map.Entry<String, Object> e : extra.entrySet()) {
                if (!m.containsKey(e.getKey())) {
                    m.put(e.getKey(), e.getValue());
                }
            }
            return m;
        }
    }

    public String id = UUID.randomUUID().toString().replace("-", "");
    public String createdAt = isoNowUtc();
    public String artifactName = "";
    public String artifactSha256 = "";
    public Device device = new Device();
    public String runtime = "";
    public int threads;
    public String delegate = ModelRunner.DELEGATE_XNNPACK;
    public int warmup;
    public int runs;
    public Stats latency;
    public boolean timingMeaningful = true;
    public Double initMs;
    public Double firstInferenceMs;
    public Double peakRssMb;
    public Double loadDeltaMb;
    public Double pssMb;
    public final Map<String, Object> extra = new LinkedHashMap<String, Object>();
    /** Non-null for a failed run: written as a top-level "error" (not part of Measurement). */
    public String error;

    /** Current time like Python's {@code datetime.now(UTC).isoformat(timespec="seconds")}. */
    public static String isoNowUtc() {
        return isoUtc(new Date());
    }

    static String isoUtc(Date when) {
        SimpleDateFormat f = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss", Locale.ROOT);
        f.setTimeZone(TimeZone.getTimeZone("UTC"));
        return f.format(when) + "+00:00";
    }

    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("schema_version", Long.valueOf(SCHEMA_VERSION));
        m.put("id", id);
        m.put("created_at", createdAt);
        m.put("artifact_name", artifactName);
        m.put("artifact_sha256", artifactSha256);
        m.put("device", device.toJson());
        m.put("runtime", runtime);
        m.put("threads", Long.valueOf(threads));
        m.put("delegate", delegate);
        m.put("warmup", Long.valueOf(warmup));
        m.put("runs", Long.valueOf(runs));
        m.put("latency", latency == null ? null : latency.toJson());
        m.put("timing_meaningful", timingMeaningful);
        m.put("init_ms", initMs);
        m.put("first_inference_ms", firstInferenceMs);
        m.put("peak_rss_mb", peakRssMb);
        m.put("load_delta_mb", loadDeltaMb);
        m.put("pss_mb", pssMb);
        m.put("extra", extra);
        if (error != null) {
            m.put("error", error);
        }
        return m;
    }

    public String toJsonText() {
        return Json.writePretty(toJson());
    }
}
