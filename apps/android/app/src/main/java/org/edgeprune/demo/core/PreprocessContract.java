package org.edgeprune.demo.core;

import java.util.List;
import java.util.Map;

/** Java mirror of edgeprune/contract.py {@code PreprocessContract} (the {@code preprocessing} object of model.json). */
public final class PreprocessContract {
    public final int inputHeight;
    public final int inputWidth;
    public final int inChannels;
    /** "NCHW" or "NHWC". */
    public final String layout;
    public final String dtype;
    public final double scale;
    public final double[] mean;
    public final double[] std;
    /** "RGB", "BGR" or "GRAY". */
    public final String channelOrder;
    public final int sourceChannels;
    public final boolean grayToRgb;
    /** "bilinear", "nearest" or "none". */
    public final String resize;
    public final boolean resizeAlignCorners;
    public final List<String> classNames;

    public PreprocessContract(int inputHeight, int inputWidth, int inChannels, String layout, String dtype,
                              double scale, double[] mean, double[] std, String channelOrder, int sourceChannels,
                              boolean grayToRgb, String resize, boolean resizeAlignCorners, List<String> classNames) {
        this.inputHeight = inputHeight;
        this.inputWidth = inputWidth;
        this.inChannels = inChannels;
        this.layout = layout;
        this.dtype = dtype;
        this.scale = scale;
        this.mean = mean;
        this.std = std;
        this.channelOrder = channelOrder;
        this.sourceChannels = sourceChannels;
        this.grayToRgb = grayToRgb;
        this.resize = resize;
        this.resizeAlignCorners = resizeAlignCorners;
        this.classNames = classNames;
        validate();
    }

    /** Reads the dict written by {@code PreprocessContract.model_dump()}; defaults match the Python model. */
    public static PreprocessContract fromJson(Map<String, Object> m) {
        int[] size = Json.getIntArray(m, "input_size");
        if (size.length != 2) {
            throw new Json.JsonException("preprocessing.input_size must be [height, width]");
        }
        double[] mean = m.containsKey("mean") ? Json.getDoubleArray(m, "mean") : new double[] {0.5, 0.5, 0.5};
        double[] std = m.containsKey("std") ? Json.getDoubleArray(m, "std") : new double[] {0.5, 0.5, 0.5};
        return new PreprocessContract(
                size[0], size[1],
                (int) Json.getLong(m, "in_channels", 3),
                Json.getString(m, "layout", "NCHW"),
                Json.getString(m, "dtype", "float32"),
                Json.getDouble(m, "scale", 1.0 / 255.0),
                mean, std,
                Json.getString(m, "channel_order", "RGB"),
                (int) Json.getLong(m, "source_channels", 3),
                Json.getBool(m, "gray_to_rgb", false),
                Json.getString(m, "resize", "bilinear"),
                Json.getBool(m, "resize_align_corners", false),
                Json.getStringList(m, "class_names"));
    }

    private void validate() {
        if (inputHeight <= 0 || inputWidth <= 0) {
            throw new Json.JsonException("preprocessing.input_size must be positive");
        }
        if (inChannels != 1 && inChannels != 3) {
            throw new Json.JsonException("preprocessing.in_channels must be 1 or 3, got " + inChannels);
        }
        if (!"NCHW".equals(layout) && !"NHWC".equals(layout)) {
            throw new Json.JsonException("preprocessing.layout must be NCHW or NHWC, got " + layout);
        }
        if (!"RGB".equals(channelOrder) && !"BGR".equals(channelOrder) && !"GRAY".equals(channelOrder)) {
            throw new Json.JsonException("preprocessing.channel_order must be RGB, BGR or GRAY");
        }
        if (!"bilinear".equals(resize) && !"nearest".equals(resize) && !"none".equals(resize)) {
            throw new Json.JsonException("preprocessing.resize must be bilinear, nearest or none");
        }
        if (mean.length < inChannels || std.length < inChannels) {
            throw new Json.JsonException("preprocessing.mean/std need one value per input channel");
        }
        for (int c = 0; c < inChannels; c++) {
            if (std[c] == 0.0) {
                throw new Json.JsonException("preprocessing.std must not contain 0");
            }
        }
    }

    /** Number of floats in one preprocessed image. */
    public int elementCount() {
        return inChannels * inputHeight * inputWidth;
    }
}
