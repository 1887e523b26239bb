// `slidestream info`: a slide's metadata as JSON and as a table.
#pragma once

#include <string>

#include "slidestream/io.hpp"

namespace slidestream {

/// `slidestream info`: the slide's metadata as stable JSON (schema in docs/FORMATS.md).
std::string slide_info_json(const SlideInfo& info);
/// `slidestream info`: the same for people, as an aligned text table.
std::string slide_info_text(const SlideInfo& info);

}  // namespace slidestream
