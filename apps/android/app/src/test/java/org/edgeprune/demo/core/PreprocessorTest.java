package org.edgeprune.demo.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.awt.image.BufferedImage;
import java.io.File;
import java.util.List;
import java.util.Map;

import javax.imageio.ImageIO;

import org.junit.Test;

/** The Java preprocessing reproduces edgeprune.contract.PreprocessContract.apply within 1e-5. */
public class PreprocessorTest {
    @Test
    @SuppressWarnings("unchecked")
    public void matchesPythonContractApply() throws Exception {
        List<Object> cases = Fixtures.list("preprocess_cases.json");
        assertTrue(cases.size() >= 5);
        int k = 0;
        for (Object o : cases) {
            Map<String, Object> c = (Map<String, Object>) o;
            PreprocessContract contract = PreprocessContract.fromJson((Map<String, Object>) c.get("contract"));
            int h = ((Number) c.get("height")).intValue();
            int w = ((Number) c.get("width")).intValue();
            int ch = ((Number) c.get("channels")).intValue();
            double[] pixels = Fixtures.doubles(c.get("pixels"));
            int[] argb = new int[h * w];
            for (int i = 0; i < h * w; i++) {
                int r;
                int g;
                int b;
                if (ch == 1) {
                    r = g = b = (int) pixels[i];
                } else {
                    r = (int) pixels[3 * i];
                    g = (int) pixels[3 * i + 1];
                    b = (int) pixels[3 * i + 2];
                }
                argb[i] = 0xff000000 | (r << 16) | (g << 8) | b;
            }
            double[] want = Fixtures.doubles(c.get("expected"));
            float[] got = new Preprocessor(contract).apply(argb, w, h);
            assertEquals("case " + k + " length", want.length, got.length);
            double worst = 0;
            for (int i = 0; i < want.length; i++) {
                worst = Math.max(worst, Math.abs(want[i] - got[i]));
            }
            assertTrue("case " + k + " (" + contract.resize + ", " + contract.layout + ", " + contract.channelOrder
                    + ") max |diff| " + worst, worst <= 1e-5);
            k++;
        }
    }

    /** The bundle's golden PNGs, preprocessed in Java, give the golden .npy inputs written by Python. */
    @Test
    public void goldenImagesReproduceTheGoldenInputs() throws Exception {
        Bundle bundle = Bundle.openVerified(Fixtures.file("bundle"));
        Preprocessor pre = new Preprocessor(bundle.model.preprocessing);
        int checked = 0;
        for (BundleModel.GoldenSample g : bundle.model.goldenSamples) {
            BufferedImage img = ImageIO.read(new File(bundle.root, g.imageFile));
            int w = img.getWidth();
            int h = img.getHeight();
            int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
            float[] mine = pre.apply(argb, w, h);
            float[] host = Npy.read(new File(bundle.root, g.inputFile)).data;
            assertTrue(g.imageFile, Preprocessor.maxAbsDiff(mine, host) <= 1e-5);
            checked++;
        }
        assertEquals(bundle.model.goldenSamples.size(), checked);
    }

    @Test
    public void resizeNoneRefusesAWrongSize() {
        PreprocessContract c = new PreprocessContract(4, 4, 3, "NCHW", "float32", 1 / 255.0,
                new double[] {0, 0, 0}, new double[] {1, 1, 1}, "RGB", 3, false, "none", false,
                java.util.Collections.<String>emptyList());
        try {
            new Preprocessor(c).apply(new int[25], 5, 5);
            fail("resized although the contract says resize=none");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains("resize=none"));
        }
    }

    @Test
    public void softmaxAndArgmax() {
        float[] logits = {1f, 3f, 2f};
        double[] p = Preprocessor.softmax(logits);
        double sum = 0;
        for (double v : p) {
            sum += v;
        }
        assertEquals(1.0, sum, 1e-12);
        assertEquals(1, Preprocessor.argmax(logits));
        assertTrue(p[1] > p[2] && p[2] > p[0]);
    }
}
