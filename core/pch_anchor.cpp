// Anchor for the shared precompiled header (see top-level CMakeLists.txt).
