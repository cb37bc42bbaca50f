// The bertling Android library, buildable on its own (`gradle :assembleRelease` with the
// Android SDK) or included in an app's build (`includeBuild("path/to/bertling/android")`).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "bertling"
