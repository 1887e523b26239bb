// slidestream: one binary, one subcommand per job. Only this file configures logging sinks,
// and it maps every slidestream::Error to its exit code in one place (docs/CLI.md).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.hpp"
#include "slidestream/core.hpp"

namespace {

void setup_logging(int verbosity, bool quiet) {
  auto logger = spdlog::stderr_color_mt("slidestream");
  logger->set_pattern("%^[%l]%$ %v");
  if (quiet) {
    logger->set_level(spdlog::level::warn);
  } else if (verbosity >= 2) {
    logger->set_level(spdlog::level::trace);
  } else if (verbosity == 1) {
    logger->set_level(spdlog::level::debug);
  } else {
    logger->set_level(spdlog::level::info);
  }
  spdlog::set_default_logger(logger);
  slidestream::ProgressBar::set_globally_enabled(!quiet);
}

int run(int argc, char** argv) {
  CLI::App app{
      "slidestream: streaming whole-slide image tiling, stain normalization and segmentation.\n"
      "Coordinates are level-0 pixels; spacing is microns per pixel (um/px, 'MPP').\n"
      "Run 'slidestream <command> --help' for each command's options.",
      "slidestream"};
  app.set_version_flag("--version", std::string("slidestream ") + slidestream::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  int verbosity = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbosity, "More log output (-vv for trace)");
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors; no progress bars");
  for (const auto& command : slidestream::cli::commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    command.define(*sub);
  }
  app.parse_complete_callback([&] { setup_logging(verbosity, quiet); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : slidestream::exit_code(slidestream::ErrorCode::kInvalidArgument);
  } catch (const slidestream::Error& error) {
    spdlog::error("{}", error.what());
    return slidestream::exit_code(error.code());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    spdlog::error("internal error: {} (please report this with the command line)", error.what());
  } catch (...) {
    spdlog::error("internal error: unknown exception (please report this with the command line)");
  }
  return slidestream::exit_code(slidestream::ErrorCode::kInternal);
}
