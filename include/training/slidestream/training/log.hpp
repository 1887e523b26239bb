// training_log.csv (docs/FORMATS.md) and its plot.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "slidestream/label_class.hpp"

namespace slidestream {

/// One line of training_log.csv (docs/FORMATS.md).
struct EpochRecord {
  int epoch = 0;  ///< 1-based
  double learning_rate = 0;
  double train_loss = 0;
  double val_loss = 0;
  std::vector<double> val_dice;  ///< per class, in config order
  double val_mean_dice = 0;      ///< over foreground classes (all classes when only one)
  double seconds = 0;
};

/// training_log.csv text: header `epoch,lr,train_loss,val_loss,dice_<class>...,mean_dice,seconds`.
std::string training_log_csv(const std::vector<EpochRecord>& records,
                             const std::vector<LabelClass>& classes);
/// Parses it back (for --resume); throws kCorruptData naming the file.
std::vector<EpochRecord> parse_training_log_csv(const std::string& text, const std::string& source);
/// Loss (left axis) and mean Dice (right axis, 0..1) per epoch, with axes and a legend (PNG).
void write_training_plot(const std::vector<EpochRecord>& records,
                         const std::filesystem::path& path);

}  // namespace slidestream
