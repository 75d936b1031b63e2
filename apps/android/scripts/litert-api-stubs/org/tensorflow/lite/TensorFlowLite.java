// COMPILE-ONLY STUB (see Delegate.java).
package org.tensorflow.lite;

public final class TensorFlowLite {
    private TensorFlowLite() {
    }

    public static String runtimeVersion() {
        throw new UnsupportedOperationException("stub");
    }
}
