// The native-network keys that model.yaml (top level) and a train config (`model:`) share, read
// by one function so the two files cannot drift apart.
#pragma once

#include <set>
#include <string>

#include "slidestream/models/description.hpp"

namespace slidestream::config {
class Node;
}

namespace slidestream {

/// filters, depth, batch_norm, padding, dropout.
const std::set<std::string>& native_network_keys();

/// Reads those of the keys that `node` has into `network` (the others keep their value).
void read_native_network(const config::Node& node, NativeNetwork& network);

}  // namespace slidestream
