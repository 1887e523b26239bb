#include <spdlog/spdlog.h>

#include <cmath>
#include <sstream>

#include "backends.hpp"
#include "slidestream/core.hpp"

namespace slidestream::detail {

namespace {

bool plausible(const Spacing& spacing) {
  auto in_range = [](double um) {
    return std::isfinite(um) && um >= kMinPlausibleSpacingUm && um <= kMaxPlausibleSpacingUm;
  };
  return in_range(spacing.x_um) && in_range(spacing.y_um);
}

std::string describe(const SpacingCandidate& candidate) {
  std::ostringstream text;
  text << spacing_source_name(candidate.source) << " = " << candidate.spacing.x_um << " x "
       << candidate.spacing.y_um << " um/px";
  return text.str();
}

}  // namespace

void resolve_spacing(SlideInfo& info, const std::vector<SpacingCandidate>& candidates,
                     const OpenOptions& options) {
  const SpacingCandidate* found = nullptr;
  std::string rejected;
  for (const SpacingCandidate& candidate : candidates) {
    if (plausible(candidate.spacing)) {
      found = &candidate;
      break;
    }
    spdlog::warn("{}: ignoring implausible spacing {} (outside {}..{} um/px)", info.path.string(),
                 describe(candidate), kMinPlausibleSpacingUm, kMaxPlausibleSpacingUm);
    rejected += (rejected.empty() ? "" : "; ") + describe(candidate);
  }

  if (options.mpp_override_um) {
    const double user = *options.mpp_override_um;
    if (!plausible(Spacing{user, user})) {
      std::ostringstream text;
      text << "--mpp " << user << " is outside the plausible range " << kMinPlausibleSpacingUm
           << ".." << kMaxPlausibleSpacingUm << " um/px (0.25 is typical at 40x, 0.5 at 20x)";
      throw Error(ErrorCode::kInvalidArgument, text.str());
    }
    if (found != nullptr && (std::abs(found->spacing.x_um - user) > 0.01 * user ||
                             std::abs(found->spacing.y_um - user) > 0.01 * user)) {
      spdlog::warn("{}: --mpp {} overrides the slide's own {}", info.path.string(), user,
                   describe(*found));
    }
    info.spacing = Spacing{user, user};
    info.spacing_source = SpacingSource::kUser;
  } else if (found != nullptr) {
    info.spacing = found->spacing;
    info.spacing_source = found->source;
  } else if (!options.require_spacing) {
    info.spacing = Spacing{0.0, 0.0};
    info.spacing_source = SpacingSource::kNone;
  } else {
    throw Error(ErrorCode::kMissingMetadata,
                "'" + info.path.string() + "' has no pixel spacing (MPP) in its metadata" +
                    (rejected.empty() ? std::string() : " that is usable (" + rejected + ")") +
                    "; pass it with --mpp, e.g. --mpp 0.25 for a 40x scan or --mpp 0.5 for 20x");
  }
  if (info.spacing.is_anisotropic()) {
    spdlog::warn(
        "{}: anisotropic spacing {} x {} um/px; patches keep the physical field of view "
        "along each axis",
        info.path.string(), info.spacing.x_um, info.spacing.y_um);
  }
  for (Level& level : info.levels) {
    level.spacing =
        Spacing{info.spacing.x_um * level.downsample, info.spacing.y_um * level.downsample};
  }
}

}  // namespace slidestream::detail
