// The subcommand table of the `slidestream` binary. Each entry only fills an options struct and
// calls one job of the library (include/slidestream/jobs.hpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace slidestream::cli {

struct Command {
  const char* name;
  const char* summary;
  /// Adds the subcommand's options to `app` and sets its callback.
  std::function<void(CLI::App& app)> define;
};

const std::vector<Command>& commands();

}  // namespace slidestream::cli
