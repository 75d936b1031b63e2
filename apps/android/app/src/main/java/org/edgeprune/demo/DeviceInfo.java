package org.edgeprune.demo;

import android.content.Context;
import android.content.Intent;
import android.content.IntentFilter;
import android.os.BatteryManager;
import android.os.Build;
import android.os.Debug;
import android.provider.Settings;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.edgeprune.demo.core.IoUtil;
import org.edgeprune.demo.core.MeasurementJson;

/** Device fingerprint and memory readings for the Measurement JSON (each field best effort). */
final class DeviceInfo {
    private DeviceInfo() {
    }

    static MeasurementJson.Device fingerprint(Context ctx) {
        MeasurementJson.Device d = new MeasurementJson.Device();
        String androidId = Settings.Secure.getString(ctx.getContentResolver(), Settings.Secure.ANDROID_ID);
        d.id = androidId != null ? androidId : Build.FINGERPRINT;
        d.model = Build.MANUFACTURER + " " + Build.MODEL;
        String[] abis = Build.SUPPORTED_ABIS;
        d.abi = abis != null && abis.length > 0 ? abis[0] : "";
        d.os = "Android " + Build.VERSION.RELEASE + " (API " + Build.VERSION.SDK_INT + ")";
        String socModel = buildField("SOC_MODEL");          // API 31+, read by reflection (we compile against 23)
        String socMaker = buildField("SOC_MANUFACTURER");
        d.soc = !socModel.isEmpty() ? (socMaker.isEmpty() ? socModel : socMaker + " " + socModel) : Build.HARDWARE;
        d.cores = Runtime.getRuntime().availableProcessors();
        d.cpuGovernor = readSys("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
        d.batteryTempC = batteryTemperature(ctx);
        List<Object> abiList = new ArrayList<Object>();
        if (abis != null) {
            for (String a : abis) {
                abiList.add(a);
            }
        }
        d.extra.put("abis", abiList);
        d.extra.put("sdk_int", Long.valueOf(Build.VERSION.SDK_INT));
        d.extra.put("board", Build.BOARD);
        d.extra.put("hardware", Build.HARDWARE);
        d.extra.put("build_fingerprint", Build.FINGERPRINT);
        return d;
    }

    private static String buildField(String name) {
        try {
            Object v = Build.class.getField(name).get(null);
            return v == null || Build.UNKNOWN.equals(v) ? "" : v.toString();
        } catch (Exception e) {
            return "";
        }
    }

    /** First line of a /sys file, or "" when the file is not readable (SELinux blocks many on new Android). */
    static String readSys(String path) {
        try {
            String s = IoUtil.readText(new File(path)).trim();
            int nl = s.indexOf('\n');
            return nl >= 0 ? s.substring(0, nl) : s;
        } catch (IOException e) {
            return "";
        } catch (SecurityException e) {
            return "";
        }
    }

    /** Battery temperature in degrees C from the sticky ACTION_BATTERY_CHANGED broadcast, or null. */
    static Double batteryTemperature(Context ctx) {
        Intent battery = ctx.registerReceiver(null, new IntentFilter(Intent.ACTION_BATTERY_CHANGED));
        if (battery == null) {
            return null;
        }
        int tenths = battery.getIntExtra(BatteryManager.EXTRA_TEMPERATURE, Integer.MIN_VALUE);
        return tenths == Integer.MIN_VALUE ? null : Double.valueOf(tenths / 10.0);
    }

    /** Total PSS of this process in MB (Debug.MemoryInfo). */
    static double pssMb() {
        Debug.MemoryInfo mi = new Debug.MemoryInfo();
        Debug.getMemoryInfo(mi);
        return mi.getTotalPss() / 1024.0;
    }

    /** Peak resident set (VmHWM of /proc/self/status) in MB, or null. */
    static Double peakRssMb() {
        try {
            for (String line : IoUtil.readText(new File("/proc/self/status")).split("\n")) {
                if (line.startsWith("VmHWM:")) {
                    String kb = line.substring(6).trim().split("\\s+")[0];
                    return Double.valueOf(Long.parseLong(kb) / 1024.0);
                }
            }
        } catch (IOException e) {
            return null;
        } catch (NumberFormatException e) {
            return null;
        }
        return null;
    }
}
