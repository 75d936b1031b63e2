package org.edgeprune.demo.core;

/**
 * Applies a {@link PreprocessContract} to an ARGB image (the int[] of {@code Bitmap.getPixels}), giving the
 * float input of the model in the contract's layout.
 *
 * <p>The steps and their float32 arithmetic follow edgeprune/contract.py {@code PreprocessContract.apply}:
 * scale the 8-bit values, convert channels, flip to BGR if asked, resize (torch {@code F.interpolate}
 * semantics, see {@link #resizePlane}), then {@code (x - mean) / std}.
 *
 * <p>Known differences from the Python side (documented, none matters for a correctly packaged bundle):
 * <ul>
 *   <li>Python's {@code apply} always returns NCHW; this class returns the contract's {@code layout}
 *       (NHWC models get NHWC), which is what the model file expects.</li>
 *   <li>Input is always ARGB: alpha is ignored (Python images have no alpha) and a grayscale PNG arrives as
 *       R = G = B. For a one-channel model a pixel with R = G = B is used as is (exactly what Python does
 *       with a 1-channel source); a colour pixel is converted with 0.299 R + 0.587 G + 0.114 B like Python.</li>
 *   <li>Decoding is Android's (BitmapFactory): 16-bit PNGs become 8-bit, EXIF orientation is not applied,
 *       and embedded colour profiles may be converted. The Python side uses PIL/numpy arrays.</li>
 * </ul>
 */
public final class Preprocessor {
    private final PreprocessContract c;

    public Preprocessor(PreprocessContract contract) {
        this.c = contract;
    }

    /**
     * @param argb   pixels, row-major, {@code 0xAARRGGBB}
     * @param width  image width
     * @param height image height
     * @return {@code inChannels * inputHeight * inputWidth} floats in the contract's layout
     */
    public float[] apply(int[] argb, int width, int height) {
        if (argb.length != width * height) {
            throw new IllegalArgumentException("pixel array has " + argb.length + " values, expected "
                    + width + "x" + height);
        }
        int channels = c.inChannels;
        float scale = (float) c.scale;
        int n = width * height;
        float[][] planes = new float[channels][n];
        for (int i = 0; i < n; i++) {
            int p = argb[i];
            int r = (p >> 16) & 0xff;
            int g = (p >> 8) & 0xff;
            int b = p & 0xff;
            if (channels == 3) {
                planes[0][i] = r * scale;
                planes[1][i] = g * scale;
                planes[2][i] = b * scale;
            } else if (r == g && g == b) {
                planes[0][i] = r * scale;
            } else {
                planes[0][i] = (r * scale) * 0.299f + (g * scale) * 0.587f + (b * scale) * 0.114f;
            }
        }
        if (channels == 3 && "BGR".equals(c.channelOrder)) {
            float[] t = planes[0];
            planes[0] = planes[2];
            planes[2] = t;
        }
        int outH = c.inputHeight;
        int outW = c.inputWidth;
        if (height != outH || width != outW) {
            if ("none".equals(c.resize)) {
                throw new IllegalArgumentException("the image is " + width + "x" + height + " but the model needs "
                        + outW + "x" + outH + " and the contract says resize=none; resize the image first");
            }
            for (int ch = 0; ch < channels; ch++) {
                planes[ch] = resizePlane(planes[ch], height, width, outH, outW, c.resize, c.resizeAlignCorners);
            }
        }
        int outN = outH * outW;
        float[] out = new float[channels * outN];
        boolean nhwc = "NHWC".equals(c.layout);
        for (int ch = 0; ch < channels; ch++) {
            float mean = (float) c.mean[ch];
            float std = (float) c.std[ch];
            float[] plane = planes[ch];
            for (int i = 0; i < outN; i++) {
                float v = (plane[i] - mean) / std;
                if (nhwc) {
                    out[i * channels + ch] = v;
                } else {
                    out[ch * outN + i] = v;
                }
            }
        }
        return out;
    }

    /**
     * Resizes one channel like {@code torch.nn.functional.interpolate} on CPU (float32 index maths):
     * bilinear uses source = scale * (dst + 0.5) - 0.5 clamped at 0 (align_corners=false) or
     * (in-1)/(out-1) * dst (align_corners=true); nearest uses floor(dst * in/out) (torch's legacy "nearest").
     */
    static float[] resizePlane(float[] src, int inH, int inW, int outH, int outW, String mode, boolean alignCorners) {
        float[] out = new float[outH * outW];
        if ("nearest".equals(mode)) {
            int[] ys = new int[outH];
            int[] xs = new int[outW];
            for (int y = 0; y < outH; y++) {
                ys[y] = nearestIndex(y, inH, outH);
            }
            for (int x = 0; x < outW; x++) {
                xs[x] = nearestIndex(x, inW, outW);
            }
            for (int y = 0; y < outH; y++) {
                for (int x = 0; x < outW; x++) {
                    out[y * outW + x] = src[ys[y] * inW + xs[x]];
                }
            }
            return out;
        }
        int[] y0 = new int[outH];
        int[] y1 = new int[outH];
        float[] wy = new float[outH];
        int[] x0 = new int[outW];
        int[] x1 = new int[outW];
        float[] wx = new float[outW];
        linearTaps(inH, outH, alignCorners, y0, y1, wy);
        linearTaps(inW, outW, alignCorners, x0, x1, wx);
        for (int y = 0; y < outH; y++) {
            float ly1 = wy[y];
            float ly0 = 1.0f - ly1;
            int r0 = y0[y] * inW;
            int r1 = y1[y] * inW;
            for (int x = 0; x < outW; x++) {
                float lx1 = wx[x];
                float lx0 = 1.0f - lx1;
                out[y * outW + x] = ly0 * (lx0 * src[r0 + x0[x]] + lx1 * src[r0 + x1[x]])
                        + ly1 * (lx0 * src[r1 + x0[x]] + lx1 * src[r1 + x1[x]]);
            }
        }
        return out;
    }

    private static void linearTaps(int in, int out, boolean alignCorners, int[] i0, int[] i1, float[] lambda1) {
        float scale;
        if (alignCorners) {
            scale = out > 1 ? (float) (in - 1) / (float) (out - 1) : 0.0f;
        } else {
            scale = (float) in / (float) out;
        }
        for (int d = 0; d < out; d++) {
            float real;
            if (alignCorners) {
                real = scale * d;
            } else {
                real = scale * (d + 0.5f) - 0.5f;
                if (real < 0.0f) {
                    real = 0.0f;
                }
            }
            int idx = Math.min((int) Math.floor(real), in - 1);
            float l = Math.min(Math.max(real - idx, 0.0f), 1.0f);
            i0[d] = idx;
            i1[d] = idx + (idx < in - 1 ? 1 : 0);
            lambda1[d] = l;
        }
    }

    private static int nearestIndex(int dst, int in, int out) {
        if (out == in) {
            return dst;
        }
        if (out == 2 * in) {
            return dst >> 1;
        }
        float scale = (float) in / (float) out;
        return Math.min((int) Math.floor(dst * scale), in - 1);
    }

    /** Largest |a[i] - b[i]|; infinity when the lengths differ or a value is NaN. */
    public static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            return Double.POSITIVE_INFINITY;
        }
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (Double.isNaN(d)) {
                return Double.POSITIVE_INFINITY;
            }
            worst = Math.max(worst, d);
        }
        return worst;
    }

    /** Index of the largest value (first one on ties). */
    public static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Numerically stable softmax in double precision. */
    public static double[] softmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        double[] out = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            out[i] = Math.exp(logits[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < out.length; i++) {
            out[i] /= sum;
        }
        return out;
    }
}
