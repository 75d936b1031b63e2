package org.edgeprune.demo.core;

import java.io.File;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Checks {@code signature.json} (written by {@code edgeprune package --signing-key}): an Ed25519 signature over
 * the exact bytes of model.json by the publisher key this app pins. model.json lists the sha256 of every other
 * file, so {@link Bundle#verify()} after this check covers the whole bundle.
 *
 * <p>Ed25519 comes from java.security: JDK 15+ and Android API 33+. On older Android versions the check fails
 * closed ("Ed25519 is not available").
 */
public final class BundleSignature {
    public static final String FILE = "signature.json";
    /** DER prefix of an X.509 SubjectPublicKeyInfo for Ed25519 (OID 1.3.101.112) before the 32 raw key bytes. */
    private static final byte[] SPKI_PREFIX = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    private static final Set<String> FIELDS = new HashSet<String>(Arrays.asList(
            "format", "algorithm", "key_id", "public_key", "signed_file", "signed_sha256", "signature"));
    private static final int MAX_SIGNATURE_JSON = 16 * 1024;

    private BundleSignature() {
    }

    /** True if this JVM / Android version can verify Ed25519 (JDK 15+, Android API 33+). */
    public static boolean available() {
        try {
            KeyFactory.getInstance("Ed25519");
            Signature.getInstance("Ed25519");
            return true;
        } catch (java.security.NoSuchAlgorithmException e) {
            return false;
        }
    }

    /** First 16 hex chars of sha256 over the raw public key, as the publisher's CLI prints it. */
    public static String keyId(byte[] rawPublicKey) {
        return Hashing.sha256(rawPublicKey).substring(0, 16);
    }

    /** Parses a pinned key given as base64 of the 32 raw bytes; empty or malformed gives null. */
    public static byte[] parsePinnedKey(String base64) {
        if (base64 == null || base64.trim().isEmpty()) {
            return null;
        }
        try {
            byte[] raw = Base64Codec.decode(base64);
            return raw.length == 32 ? raw : null;
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /**
     * Verifies {@code root/signature.json} against {@code root/model.json} and the pinned key.
     *
     * @return the key id that signed the bundle
     * @throws Bundle.BundleException when unsigned, signed by another key, or the signature does not verify
     */
    public static String verify(File root, byte[] pinnedKey) throws Bundle.BundleException {
        if (pinnedKey == null || pinnedKey.length != 32) {
            throw new Bundle.BundleException("no publisher key is pinned in this app build, so bundles cannot be "
                    + "trusted (set publisher_public_key)");
        }
        File sigFile = new File(root, FILE);
        if (!sigFile.isFile()) {
            throw new Bundle.BundleException("the bundle is not signed (no " + FILE + ")");
        }
        if (sigFile.length() > MAX_SIGNATURE_JSON) {
            throw new Bundle.BundleException(FILE + " is too large");
        }
        byte[] modelJson;
        Map<String, Object> sig;
        try {
            sig = Json.parseObject(IoUtil.readText(sigFile));
            modelJson = IoUtil.readFile(new File(root, Bundle.MODEL_JSON));
        } catch (IOException e) {
            throw new Bundle.BundleException("cannot read the signature: " + e.getMessage(), e);
        } catch (Json.JsonException e) {
            throw new Bundle.BundleException(FILE + " is not valid JSON: " + e.getMessage(), e);
        }
        if (!sig.keySet().equals(FIELDS)) {
            throw new Bundle.BundleException(FILE + " is malformed: unexpected or missing fields");
        }
        byte[] raw;
        byte[] signature;
        try {
            if (Json.getLong(sig, "format", -1) != 1 || !"Ed25519".equals(Json.getString(sig, "algorithm", ""))
                    || !Bundle.MODEL_JSON.equals(Json.getString(sig, "signed_file", ""))) {
                throw new Bundle.BundleException(FILE + " has an unsupported format, algorithm or signed_file");
            }
            raw = Base64Codec.decode(Json.requireString(sig, "public_key"));
            signature = Base64Codec.decode(Json.requireString(sig, "signature"));
        } catch (IllegalArgumentException e) {
            throw new Bundle.BundleException(FILE + " is malformed: " + e.getMessage(), e);
        } catch (Json.JsonException e) {
            throw new Bundle.BundleException(FILE + " is malformed: " + e.getMessage(), e);
        }
        if (raw.length != 32 || signature.length != 64) {
            throw new Bundle.BundleException(FILE + " is malformed: wrong key or signature length");
        }
        if (!MessageDigest.isEqual(raw, pinnedKey)) {
            throw new Bundle.BundleException("the bundle is signed by key " + keyId(raw) + ", not by the pinned "
                    + "publisher key " + keyId(pinnedKey));
        }
        if (!keyId(raw).equals(Json.getString(sig, "key_id", ""))) {
            throw new Bundle.BundleException(FILE + " key_id does not match its public key");
        }
        if (!Hashing.sha256(modelJson).equals(Json.getString(sig, "signed_sha256", ""))) {
            throw new Bundle.BundleException("model.json was changed after it was signed (sha256 differs)");
        }
        if (!ed25519Verify(pinnedKey, modelJson, signature)) {
            throw new Bundle.BundleException("the Ed25519 signature over model.json does not verify");
        }
        return keyId(raw);
    }

    /** True if {@code signature} is a valid Ed25519 signature of {@code data} by the raw 32-byte key. */
    public static boolean ed25519Verify(byte[] rawKey, byte[] data, byte[] signature) throws Bundle.BundleException {
        byte[] spki = new byte[SPKI_PREFIX.length + rawKey.length];
        System.arraycopy(SPKI_PREFIX, 0, spki, 0, SPKI_PREFIX.length);
        System.arraycopy(rawKey, 0, spki, SPKI_PREFIX.length, rawKey.length);
        try {
            PublicKey key = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(spki));
            Signature verifier = Signature.getInstance("Ed25519");
            verifier.initVerify(key);
            verifier.update(data);
            return verifier.verify(signature);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new Bundle.BundleException("Ed25519 is not available on this device (Android 13 / API 33+ is "
                    + "needed to check bundle signatures)", e);
        } catch (java.security.SignatureException e) {
            return false; // malformed signature bytes
        } catch (GeneralSecurityException e) {
            throw new Bundle.BundleException("cannot check the signature: " + e.getMessage(), e);
        }
    }
}
