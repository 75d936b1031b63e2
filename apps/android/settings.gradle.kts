// edgeprune Android demo app: open this folder in Android Studio, or see README.md for the command line.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()        // Android Gradle Plugin
        mavenCentral()  // com.google.ai.edge.litert:litert
    }
}

rootProject.name = "edgeprune-demo"
include(":app")
