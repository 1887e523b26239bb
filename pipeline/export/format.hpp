// Number formatting shared by the export writers (not a public header).
#pragma once

#include <string>

namespace slidestream::export_detail {

/// `value` with exactly `decimals` decimals, locale-independent, never "-0.00".
std::string fixed(double value, int decimals);

}  // namespace slidestream::export_detail
