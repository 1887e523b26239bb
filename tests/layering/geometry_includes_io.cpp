// Must not compile: the geometry module does not link io, so io's header is not on its include
// path (tests/CMakeLists.txt, layering.*). If this builds, the layering is no longer the build's.
#include "slidestream/geometry.hpp"
#include "slidestream/io.hpp"
