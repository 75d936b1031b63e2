package org.edgeprune.demo.runtime;

import org.edgeprune.demo.core.ModelRunner;

/** Runner factory of the offline build (same class name in every flavor). */
public final class Runners {
    private Runners() {
    }

    public static ModelRunner create() {
        return new UnbundledModelRunner();
    }

    /** False: this build cannot run models. */
    public static boolean hasRuntime() {
        return false;
    }
}
