package org.edgeprune.demo.core;

import java.util.ArrayList;
import java.util.List;

import org.junit.internal.TextListener;
import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;

/**
 * Runs test classes with JUnitCore (the offline CI has JUnit 4 but no Gradle) and ends with one line
 * "N passed, N failed, N skipped"; exit code 1 if anything failed.
 */
public final class JvmTestMain {
    private JvmTestMain() {
    }

    public static void main(String[] args) throws Exception {
        List<Class<?>> classes = new ArrayList<Class<?>>();
        for (String name : args) {
            classes.add(Class.forName(name));
        }
        JUnitCore core = new JUnitCore();
        core.addListener(new TextListener(System.out));
        Result r = core.run(classes.toArray(new Class<?>[0]));
        int skipped = r.getIgnoreCount() + r.getAssumptionFailureCount();
        int failed = r.getFailureCount();
        int passed = r.getRunCount() - failed - r.getAssumptionFailureCount();
        for (Failure f : r.getFailures()) {
            System.out.println("FAILED " + f.getTestHeader() + ": " + f.getMessage());
        }
        System.out.println(passed + " passed, " + failed + " failed, " + skipped + " skipped");
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }
}
