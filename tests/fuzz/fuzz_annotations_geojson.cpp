// Fuzzes the QuPath GeoJSON reader (read_annotations on .geojson, or .geojson.gz when the input
// is gzip data) and rasterizes what it reads.
#include "annotation_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  slidestream::fuzz::check_annotation_reader(data, size, "annotations.geojson");
  return 0;
}
