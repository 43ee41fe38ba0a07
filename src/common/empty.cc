// Stands in for a part whose sources are not written yet (see granary_part in CMakeLists.txt).
