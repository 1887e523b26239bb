// The subcommand table of the `slidestream` binary. Each entry only fills an options struct and
// calls one job of the library (include/jobs/slidestream/jobs/). Subcommands of one area live in
// their own file (commands_<area>.cpp) and are listed in the table in commands.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "slidestream/io.hpp"
#include "slidestream/jobs/batch.hpp"

namespace slidestream::cli {

struct Command {
  const char* name;
  const char* summary;
  /// Adds the subcommand's options to `app` and sets its callback.
  std::function<void(CLI::App& app)> define;
};

const std::vector<Command>& commands();

// Subcommands defined in their own files (commands_<area>.cpp).
void define_segment(CLI::App& app);
void define_export(CLI::App& app);
/// `slidestream train`, `evaluate` and `features` (commands_training.cpp).
void define_train(CLI::App& app);
void define_evaluate(CLI::App& app);
void define_features(CLI::App& app);
/// `slidestream stain fit|apply|show|normalize-slide` (commands_stain.cpp).
void define_stain(CLI::App& app);

/// Options every command that opens a slide shares: --mpp, --backend, --channels.
struct SlideOptions {
  std::string backend = "auto";
  std::optional<double> mpp;
  std::string channels;

  void add_to(CLI::App& app);
  /// Throws kInvalidArgument for a bad --backend or --channels value.
  OpenOptions to_open_options() const;
};

/// Prints a batch's summary table; throws when a slide failed: that slide's error code for a
/// batch of one, kPartialFailure otherwise (so the exit code says whether any slide failed).
/// `see` names where the details are, e.g. "the table above and batch_report.json".
void finish_batch(const BatchReport& report, const std::string& see);

/// `slidestream predict` (commands_models.cpp).
void define_predict(CLI::App& app);

}  // namespace slidestream::cli
