// Plugin versions for the whole build; the module applies them in fieldsync/build.gradle.kts.
// Android Gradle Plugin 8.7 needs Gradle 8.9 or later and JDK 17.
plugins {
    id("com.android.library") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.0.21" apply false
}
