plugins {
    id("com.android.application")
}

val litertVersion = "2.3.0"

android {
    namespace = "org.edgeprune.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.edgeprune.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    // "litert": the real app (LiteRT Interpreter runtime from Maven).
    // "offline": same app without a runtime, identical to what scripts/build_offline_apk.sh builds in CI.
    flavorDimensions += "runtime"
    productFlavors {
        create("litert") {
            dimension = "runtime"
            isDefault = true
        }
        create("offline") {
            dimension = "runtime"
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    // keep models uncompressed in the APK so they can be memory-mapped (AssetFileDescriptor)
    androidResources {
        noCompress += listOf("tflite")
    }

    testOptions {
        unitTests.isReturnDefaultValues = true
    }
}

dependencies {
    "litertImplementation"("com.google.ai.edge.litert:litert:$litertVersion")
    // Optional GPU delegate for `--es delegate gpu` (LiteRtModelRunner finds it by reflection):
    // "litertImplementation"("com.google.ai.edge.litert:litert-gpu:$litertVersion")
    // "litertImplementation"("com.google.ai.edge.litert:litert-gpu-api:$litertVersion")

    testImplementation("junit:junit:4.13.2")
}

// The JVM tests read fixtures made by the Python side: python tests/android/make_fixture_bundle.py DIR
// then EDGEPRUNE_ANDROID_FIXTURES=DIR ./gradlew :app:testLitertDebugUnitTest (without it they are skipped).
tasks.withType<Test>().configureEach {
    System.getenv("EDGEPRUNE_ANDROID_FIXTURES")?.let { systemProperty("edgeprune.fixtures", it) }
}
