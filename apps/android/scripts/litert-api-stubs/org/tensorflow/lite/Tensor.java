// COMPILE-ONLY STUB (see Delegate.java).
package org.tensorflow.lite;

public interface Tensor {
    DataType dataType();

    int numBytes();

    int numElements();

    int[] shape();

    QuantizationParams quantizationParams();

    class QuantizationParams {
        public QuantizationParams(float scale, int zeroPoint) {
        }

        public float getScale() {
            throw new UnsupportedOperationException("stub");
        }

        public int getZeroPoint() {
            throw new UnsupportedOperationException("stub");
        }
    }
}
