// COMPILE-ONLY STUB (see Delegate.java).
package org.tensorflow.lite;

import java.nio.ByteBuffer;

public final class Interpreter implements AutoCloseable {
    public static class Options {
        public Options setNumThreads(int numThreads) {
            return this;
        }

        public Options setUseXNNPACK(boolean useXNNPACK) {
            return this;
        }

        public Options addDelegate(Delegate delegate) {
            return this;
        }
    }

    public Interpreter(ByteBuffer byteBuffer, Options options) {
        throw new UnsupportedOperationException("stub");
    }

    public void run(Object input, Object output) {
        throw new UnsupportedOperationException("stub");
    }

    public Tensor getInputTensor(int inputIndex) {
        throw new UnsupportedOperationException("stub");
    }

    public Tensor getOutputTensor(int outputIndex) {
        throw new UnsupportedOperationException("stub");
    }

    @Override
    public void close() {
    }
}
