package org.edgeprune.demo.runtime;

import java.nio.ByteBuffer;

import org.edgeprune.demo.core.ModelRunner;

/**
 * The runner of the offline (no Gradle) build. That build cannot contain the LiteRT runtime (it only comes
 * from Google's Maven), so every call fails with a clear message; build the "litert" flavor with Gradle to
 * run models on a phone.
 */
public final class UnbundledModelRunner implements ModelRunner {
    public static final String MESSAGE = "runtime not bundled in this build";

    @Override
    public void load(ByteBuffer model, int threads, String delegate) throws ModelRunnerException {
        throw new ModelRunnerException(MESSAGE);
    }

    @Override
    public int[] inputShape() throws ModelRunnerException {
        throw new ModelRunnerException(MESSAGE);
    }

    @Override
    public float[] run(float[] input) throws ModelRunnerException {
        throw new ModelRunnerException(MESSAGE);
    }

    @Override
    public String activeDelegate() {
        return "";
    }

    @Override
    public String runtimeName() {
        return "none (offline build: " + MESSAGE + ")";
    }

    @Override
    public void close() {
    }
}
