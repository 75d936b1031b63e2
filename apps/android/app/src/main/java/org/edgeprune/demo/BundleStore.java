package org.edgeprune.demo;

import android.content.Context;
import android.content.pm.PackageManager;
import android.content.res.AssetFileDescriptor;
import android.content.res.AssetManager;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;

import org.edgeprune.demo.core.BackendClient;
import org.edgeprune.demo.core.Bundle;
import org.edgeprune.demo.core.BundleSignature;
import org.edgeprune.demo.core.Hashing;
import org.edgeprune.demo.core.IoUtil;

/** Where bundles come from on the phone: the APK's assets/bundle/ or a download from the backend. */
final class BundleStore {
    /** Folder inside the APK assets that holds a bundle (model.json at its root). */
    static final String ASSET_DIR = "bundle";

    private BundleStore() {
    }

    /** True if the APK ships a bundle. */
    static boolean hasAssetBundle(Context ctx) {
        try {
            String[] names = ctx.getAssets().list(ASSET_DIR);
            if (names == null) {
                return false;
            }
            for (String n : names) {
                if (Bundle.MODEL_JSON.equals(n)) {
                    return true;
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    /**
     * Copies assets/bundle/ to the app's files dir (again after each app update) and verifies every sha256.
     * Returns null when the APK has no bundle.
     */
    static Bundle fromAssets(Context ctx) throws IOException, Bundle.BundleException {
        if (!hasAssetBundle(ctx)) {
            return null;
        }
        File dest = new File(ctx.getFilesDir(), "bundle-assets");
        File stamp = new File(dest, ".installed-from");
        String version = apkStamp(ctx);
        boolean fresh = stamp.isFile() && version.equals(IoUtil.readText(stamp));
        if (!fresh) {
            IoUtil.deleteTree(dest);
            copyAssetTree(ctx.getAssets(), ASSET_DIR, dest);
            IoUtil.writeTextAtomic(stamp, version);
        }
        byte[] pinned = AppSettings.pinnedPublisherKey(ctx);
        // The APK signature already covers its assets. With a pinned key the asset bundle must be signed too,
        // except on Android < 13 (no Ed25519 in java.security), where the APK signature is what vouches for it.
        if (pinned == null || !BundleSignature.available()) {
            return Bundle.openVerified(dest);
        }
        return Bundle.openTrusted(dest, pinned);
    }

    private static String apkStamp(Context ctx) {
        try {
            return Long.toString(ctx.getPackageManager().getPackageInfo(ctx.getPackageName(), 0).lastUpdateTime);
        } catch (PackageManager.NameNotFoundException e) {
            return "unknown";
        }
    }

    private static void copyAssetTree(AssetManager assets, String path, File dest) throws IOException {
        String[] children = assets.list(path);
        if (children == null || children.length == 0) {
            File parent = dest.getParentFile();
            if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
                throw new IOException("cannot create " + parent);
            }
            InputStream in = assets.open(path);
            OutputStream out = new FileOutputStream(dest);
            try {
                IoUtil.copy(in, out);
            } finally {
                out.close();
                in.close();
            }
            return;
        }
        if (!dest.isDirectory() && !dest.mkdirs()) {
            throw new IOException("cannot create " + dest);
        }
        for (String c : children) {
            copyAssetTree(assets, path + "/" + c, new File(dest, c));
        }
    }

    /**
     * Asks the backend which bundle the channel serves, downloads it (resuming a partial download) unless
     * it is already on the phone, unpacks and verifies it.
     */
    static Bundle fromBackend(Context ctx, BackendClient client, String app, String channel, String abi)
            throws IOException, Bundle.BundleException {
        byte[] pinned = AppSettings.pinnedPublisherKey(ctx);
        if (pinned == null) {
            throw new Bundle.BundleException("this build pins no publisher key (res/values/publisher_key.xml), so "
                    + "downloaded bundles cannot be trusted");
        }
        BackendClient.CurrentBundle current = client.current(app, channel, abi);
        File root = new File(ctx.getFilesDir(), "bundles");
        File dir = new File(root, current.sha256);
        if (dir.isDirectory()) {
            try {
                return Bundle.openTrusted(resolveRoot(dir), pinned);
            } catch (Bundle.BundleException e) {
                IoUtil.deleteTree(dir); // damaged copy: fetch again
            }
        }
        File zip = client.download(current.sha256, current.downloadUrl, new File(root, current.sha256 + ".zip"));
        File tmp = new File(root, current.sha256 + ".tmp");
        IoUtil.deleteTree(tmp);
        try {
            Bundle.openTrusted(Bundle.unzip(zip, tmp), pinned); // size limits, names, listing, then the signature
        } catch (Bundle.BundleException e) {
            IoUtil.deleteTree(tmp);
            zip.delete();
            throw e;
        }
        if (!tmp.renameTo(dir)) {
            throw new IOException("cannot move the unpacked bundle to " + dir);
        }
        zip.delete();
        return Bundle.openTrusted(resolveRoot(dir), pinned);
    }

    private static File resolveRoot(File dir) {
        if (new File(dir, Bundle.MODEL_JSON).isFile()) {
            return dir;
        }
        File[] children = dir.listFiles();
        if (children != null && children.length == 1 && children[0].isDirectory()) {
            return children[0];
        }
        return dir;
    }

    /** Memory-maps a model file (read only). */
    static MappedByteBuffer mapFile(File f) throws IOException {
        RandomAccessFile raf = new RandomAccessFile(f, "r");
        try {
            return raf.getChannel().map(FileChannel.MapMode.READ_ONLY, 0, raf.length());
        } finally {
            raf.close();
        }
    }

    /**
     * Memory-maps a model straight from the APK. This only works because the offline build and Gradle
     * ({@code noCompress}) store .tflite files uncompressed.
     */
    static MappedByteBuffer mapAsset(Context ctx, String assetPath) throws IOException {
        AssetFileDescriptor fd = ctx.getAssets().openFd(assetPath);
        try {
            FileInputStream in = fd.createInputStream();
            try {
                return in.getChannel().map(FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
            } finally {
                in.close();
            }
        } finally {
            fd.close();
        }
    }

    /** sha256 of a (mapped) model buffer without disturbing its position. */
    static String sha256(ByteBuffer model) {
        java.security.MessageDigest md = Hashing.newSha256();
        md.update(model.duplicate());
        return Hashing.hex(md.digest());
    }
}
