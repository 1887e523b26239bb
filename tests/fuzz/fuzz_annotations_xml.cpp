// Fuzzes the ASAP and Aperio ImageScope XML readers (read_annotations on .xml, told apart by
// the root element; .xml.gz when the input is gzip data) and rasterizes what they read.
#include "annotation_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  slidestream::fuzz::check_annotation_reader(data, size, "annotations.xml");
  return 0;
}
