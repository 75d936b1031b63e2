package org.edgeprune.demo.core;

import java.nio.ByteBuffer;

/**
 * The only seam between the app and an inference runtime. The Gradle "litert" flavor implements it with
 * LiteRT's Interpreter; the offline build has a runner that always fails with "runtime not bundled".
 * Implementations must not be used from two threads at once.
 */
public interface ModelRunner {
    /** Delegate names accepted by {@link #load}. */
    String DELEGATE_XNNPACK = "xnnpack";
    String DELEGATE_GPU = "gpu";
    String DELEGATE_NONE = "none";

    /**
     * Loads a model.
     *
     * @param model    the model file contents; a direct or memory-mapped buffer (kept alive until close)
     * @param threads  CPU threads (values below 1 mean "runtime default")
     * @param delegate one of xnnpack | gpu | none
     */
    void load(ByteBuffer model, int threads, String delegate) throws ModelRunnerException;

    /** Shape of the first input tensor, e.g. [1, 3, 28, 28]. */
    int[] inputShape() throws ModelRunnerException;

    /** Runs one input (float, in the model's layout; quantized models are quantized inside) and returns logits. */
    float[] run(float[] input) throws ModelRunnerException;

    /** What actually runs, e.g. "xnnpack" or "gpu" (may differ from the request after a fallback). */
    String activeDelegate();

    /** Runtime name and version for the Measurement's {@code runtime} field. */
    String runtimeName();

    void close();

    /** Any failure to load or run a model. */
    final class ModelRunnerException extends Exception {
        public ModelRunnerException(String message) {
            super(message);
        }

        public ModelRunnerException(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
