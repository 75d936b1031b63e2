package org.edgeprune.demo.runtime;

import org.edgeprune.demo.core.ModelRunner;

/** Runner factory of the LiteRT build (same class name in every flavor). */
public final class Runners {
    private Runners() {
    }

    public static ModelRunner create() {
        return new LiteRtModelRunner();
    }

    public static boolean hasRuntime() {
        return true;
    }
}
