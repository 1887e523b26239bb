// NativeNetwork: its range checks and its keys in model.yaml and the train config.
#include "config_reader.hpp"
#include "native_network_keys.hpp"

namespace slidestream {

std::optional<KeyProblem> NativeNetwork::first_problem(const std::string& architecture) const {
  if (filters < 1 || filters > 512) {
    return KeyProblem{"filters", "must be 1..512"};
  }
  if (depth < 1 || depth > 6) {
    return KeyProblem{"depth", "must be 1..6"};
  }
  if (!(dropout >= 0 && dropout < 1)) {
    return KeyProblem{"dropout", "must be in [0, 1)"};
  }
  if (architecture == "hooknet" && padding != Padding::kValid) {
    return KeyProblem{"padding", "HookNet uses valid convolutions only"};
  }
  return std::nullopt;
}

const std::set<std::string>& native_network_keys() {
  static const std::set<std::string> keys{"filters", "depth", "batch_norm", "padding", "dropout"};
  return keys;
}

void read_native_network(const config::Node& node, NativeNetwork& network) {
  node.read("filters", network.filters);
  node.read("depth", network.depth);
  node.read("batch_norm", network.batch_norm);
  if (node["padding"].present()) {
    network.padding = node["padding"].parsed(parse_padding);
  }
  node.read("dropout", network.dropout);
}

}  // namespace slidestream
