// Top-level build file: only declares the plugin version; the app module applies it.
plugins {
    id("com.android.application") version "8.13.2" apply false
}
