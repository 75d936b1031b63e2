import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.File;
import javax.imageio.ImageIO;

import org.edgeprune.demo.core.Bundle;
import org.edgeprune.demo.core.BundleModel;
import org.edgeprune.demo.core.Npy;
import org.edgeprune.demo.core.Preprocessor;

/**
 * Reads a bundle written by `edgeprune package` with the Android app's own plain-Java core classes:
 * verifies every sha256, picks the artifact the app would run, reads the golden .npy inputs and
 * re-preprocesses the golden PNGs with the app's Preprocessor. Prints key=value lines; exit 3 if refused.
 */
public final class BundleCheck {
    private BundleCheck() {
    }

    public static void main(String[] args) throws Exception {
        Bundle b;
        try {
            b = Bundle.openVerified(new File(args[0]));
        } catch (Bundle.BundleException e) {
            System.out.println("refused=" + e.getMessage());
            System.exit(3);
            return;
        }
        BundleModel m = b.model;
        BundleModel.Artifact a = m.primaryArtifact("tflite");
        System.out.println("name=" + m.name);
        System.out.println("version=" + m.version);
        System.out.println("primary=" + a.file);
        System.out.println("primary_gate=" + a.gate);
        System.out.println("primary_input_dtype=" + a.inputs.get(0).dtype);
        System.out.println("primary_input_scale=" + a.inputs.get(0).quantScale);
        System.out.println("files=" + m.files.size());
        System.out.println("labels=" + String.join(",", b.labels()));
        System.out.println("golden=" + m.goldenSamples.size());
        int expected = 1;
        for (int d : a.inputs.get(0).shape) {
            expected *= d;
        }
        Preprocessor pre = new Preprocessor(m.preprocessing);
        double worst = 0;
        int sizeMismatches = 0;
        for (BundleModel.GoldenSample s : m.goldenSamples) {
            Npy x = Npy.read(b.resolve(s.inputFile));
            if (x.data.length != expected || !"<f4".equals(x.descr)) {
                sizeMismatches++;
            }
            BufferedImage img = ImageIO.read(b.resolve(s.imageFile));
            Raster r = img.getRaster();
            int w = img.getWidth();
            int h = img.getHeight();
            int bands = r.getNumBands();
            int[] px = new int[bands];
            int[] argb = new int[w * h];
            for (int yy = 0; yy < h; yy++) {
                for (int xx = 0; xx < w; xx++) {
                    r.getPixel(xx, yy, px);
                    int red = px[0];
                    int green = bands >= 3 ? px[1] : px[0];
                    int blue = bands >= 3 ? px[2] : px[0];
                    argb[yy * w + xx] = 0xff000000 | (red << 16) | (green << 8) | blue;
                }
            }
            worst = Math.max(worst, Preprocessor.maxAbsDiff(pre.apply(argb, w, h), x.data));
        }
        System.out.println("npy_shape_mismatches=" + sizeMismatches);
        System.out.println("max_preprocess_diff=" + worst);
    }
}
