package org.edgeprune.demo.runtime;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import org.edgeprune.demo.core.ModelRunner;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Delegate;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.TensorFlowLite;

/**
 * The one class that touches LiteRT: runs a .tflite with the Interpreter API (com.google.ai.edge.litert:litert),
 * on CPU with XNNPACK (default), plain CPU kernels ("none"), or the GPU delegate when the app also depends on
 * the LiteRT GPU artifacts (looked up by reflection, so the base build needs only litert). int8/uint8 inputs and
 * outputs are (de)quantized here with the tensor's scale and zero point.
 */
public final class LiteRtModelRunner implements ModelRunner {
    private static final String GPU_DELEGATE_CLASS = "org.tensorflow.lite.gpu.GpuDelegate";
    private static final String GPU_COMPAT_CLASS = "org.tensorflow.lite.gpu.CompatibilityList";

    private Interpreter interpreter;
    private Delegate gpuDelegate;
    private String active = "";
    private Tensor input;
    private Tensor output;
    private ByteBuffer inBuf;
    private ByteBuffer outBuf;

    @Override
    public void load(ByteBuffer model, int threads, String delegate) throws ModelRunnerException {
        close();
        String wanted = delegate == null ? DELEGATE_XNNPACK : delegate;
        String note = "";
        if (DELEGATE_GPU.equals(wanted)) {
            gpuDelegate = newGpuDelegate();
            if (gpuDelegate == null) {
                note = " (gpu unavailable: add the litert-gpu dependencies or use a supported device)";
            }
        }
        try {
            interpreter = new Interpreter(model, options(threads, wanted));
            active = gpuDelegate != null ? DELEGATE_GPU : (DELEGATE_NONE.equals(wanted) ? DELEGATE_NONE : DELEGATE_XNNPACK);
        } catch (RuntimeException e) {
            if (gpuDelegate == null) {
                throw new ModelRunnerException("LiteRT could not load the model: " + e.getMessage(), e);
            }
            // the GPU delegate refused the graph: fall back to XNNPACK and say so
            closeGpuDelegate();
            note = " (gpu delegate failed: " + e.getMessage() + ")";
            try {
                interpreter = new Interpreter(model, options(threads, DELEGATE_XNNPACK));
                active = DELEGATE_XNNPACK;
            } catch (RuntimeException e2) {
                throw new ModelRunnerException("LiteRT could not load the model: " + e2.getMessage(), e2);
            }
        }
        active = active + note;
        input = interpreter.getInputTensor(0);
        output = interpreter.getOutputTensor(0);
        inBuf = ByteBuffer.allocateDirect(input.numBytes()).order(ByteOrder.nativeOrder());
        outBuf = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder());
    }

    private Interpreter.Options options(int threads, String delegate) {
        Interpreter.Options o = new Interpreter.Options();
        if (threads > 0) {
            o.setNumThreads(threads);
        }
        o.setUseXNNPACK(!DELEGATE_NONE.equals(delegate));
        if (gpuDelegate != null) {
            o.addDelegate(gpuDelegate);
        }
        return o;
    }

    /** The GPU delegate if its classes are on the classpath and the device supports it, else null. */
    private static Delegate newGpuDelegate() {
        try {
            Class<?> compat = Class.forName(GPU_COMPAT_CLASS);
            Object list = compat.getConstructor().newInstance();
            Object ok = compat.getMethod("isDelegateSupportedOnThisDevice").invoke(list);
            compat.getMethod("close").invoke(list);
            if (!Boolean.TRUE.equals(ok)) {
                return null;
            }
            return (Delegate) Class.forName(GPU_DELEGATE_CLASS).getConstructor().newInstance();
        } catch (Exception e) {
            return null;
        } catch (LinkageError e) {
            return null;
        }
    }

    private void requireLoaded() throws ModelRunnerException {
        if (interpreter == null) {
            throw new ModelRunnerException("no model loaded");
        }
    }

    @Override
    public int[] inputShape() throws ModelRunnerException {
        requireLoaded();
        return input.shape().clone();
    }

    @Override
    public float[] run(float[] x) throws ModelRunnerException {
        requireLoaded();
        int n = input.numElements();
        if (x.length != n) {
            throw new ModelRunnerException("input has " + x.length + " values, the model expects " + n + " "
                    + Arrays.toString(input.shape()));
        }
        inBuf.rewind();
        DataType inType = input.dataType();
        if (inType == DataType.FLOAT32) {
            for (float v : x) {
                inBuf.putFloat(v);
            }
        } else if (inType == DataType.INT8 || inType == DataType.UINT8) {
            Tensor.QuantizationParams q = input.quantizationParams();
            float scale = q.getScale();
            int zero = q.getZeroPoint();
            int lo = inType == DataType.INT8 ? -128 : 0;
            int hi = inType == DataType.INT8 ? 127 : 255;
            for (float v : x) {
                int qv = Math.round(v / scale) + zero;
                inBuf.put((byte) Math.max(lo, Math.min(hi, qv)));
            }
        } else {
            throw new ModelRunnerException("unsupported input type " + inType + " (expected float32, int8 or uint8)");
        }
        inBuf.rewind();
        outBuf.rewind();
        try {
            interpreter.run(inBuf, outBuf);
        } catch (RuntimeException e) {
            throw new ModelRunnerException("LiteRT inference failed: " + e.getMessage(), e);
        }
        outBuf.rewind();
        int m = output.numElements();
        float[] y = new float[m];
        DataType outType = output.dataType();
        if (outType == DataType.FLOAT32) {
            for (int i = 0; i < m; i++) {
                y[i] = outBuf.getFloat();
            }
        } else if (outType == DataType.INT8 || outType == DataType.UINT8) {
            Tensor.QuantizationParams q = output.quantizationParams();
            for (int i = 0; i < m; i++) {
                int raw = outType == DataType.INT8 ? outBuf.get() : (outBuf.get() & 0xff);
                y[i] = (raw - q.getZeroPoint()) * q.getScale();
            }
        } else {
            throw new ModelRunnerException("unsupported output type " + outType);
        }
        return y;
    }

    @Override
    public String activeDelegate() {
        return active;
    }

    @Override
    public String runtimeName() {
        String version;
        try {
            version = TensorFlowLite.runtimeVersion();
        } catch (Throwable t) {
            version = "unknown version";
        }
        return "litert-android " + version + " (Interpreter API)";
    }

    private void closeGpuDelegate() {
        if (gpuDelegate != null) {
            try {
                gpuDelegate.close();
            } catch (Exception e) {
                // nothing useful to do while tearing down
            }
            gpuDelegate = null;
        }
    }

    @Override
    public void close() {
        if (interpreter != null) {
            interpreter.close();
            interpreter = null;
        }
        closeGpuDelegate();
        active = "";
    }
}
