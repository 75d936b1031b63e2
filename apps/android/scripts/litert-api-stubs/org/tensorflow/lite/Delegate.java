// COMPILE-ONLY STUB for the CI check of app/src/litert (never packaged): the subset of LiteRT's Java API
// (com.google.ai.edge.litert:litert, package org.tensorflow.lite) that LiteRtModelRunner uses.
package org.tensorflow.lite;

public interface Delegate extends java.io.Closeable {
    long getNativeHandle();

    @Override
    void close();
}
