// fieldsync's Android library: the Rust phone API (android-bindings) packaged as an AAR with its
// generated Kotlin bindings and native libraries. See docs/android.md.
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
        google()
        mavenCentral()
    }
}

rootProject.name = "fieldsync-android"
include(":fieldsync")
