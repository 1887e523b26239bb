// Confusion matrix, Dice and IoU; the training log as CSV.
#include "slidestream/training/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "slidestream/core.hpp"
#include "slidestream/training/log.hpp"

namespace slidestream {

ConfusionMatrix::ConfusionMatrix(int classes)
    : classes_(classes), counts_(static_cast<std::size_t>(classes) * classes, 0) {
  if (classes < 1 || classes > 255) {
    throw Error(ErrorCode::kInvalidArgument, "a confusion matrix needs 1..255 classes");
  }
}

void ConfusionMatrix::add(const cv::Mat& truth, const cv::Mat& prediction, int ignore) {
  if (truth.size() != prediction.size() || truth.type() != CV_8UC1 ||
      prediction.type() != CV_8UC1) {
    throw Error(ErrorCode::kInvalidArgument,
                "confusion matrix: truth and prediction must be CV_8UC1 of the same size");
  }
  for (int y = 0; y < truth.rows; ++y) {
    const std::uint8_t* t = truth.ptr<std::uint8_t>(y);
    const std::uint8_t* p = prediction.ptr<std::uint8_t>(y);
    for (int x = 0; x < truth.cols; ++x) {
      if (t[x] == ignore || t[x] >= classes_) {
        continue;
      }
      // A prediction outside the classes counts as wrong for class t (column clamped).
      const int column = p[x] < classes_ ? p[x] : (t[x] + 1) % classes_;
      ++counts_[static_cast<std::size_t>(t[x]) * classes_ + column];
    }
  }
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  if (other.classes_ != classes_) {
    throw Error(ErrorCode::kInvalidArgument, "confusion matrices of different class counts");
  }
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
}

void ConfusionMatrix::add_count(int truth, int prediction, std::int64_t pixels) {
  counts_.at(static_cast<std::size_t>(truth) * classes_ + prediction) += pixels;
}

std::int64_t ConfusionMatrix::count(int truth, int prediction) const {
  return counts_.at(static_cast<std::size_t>(truth) * classes_ + prediction);
}

std::int64_t ConfusionMatrix::total() const {
  std::int64_t sum = 0;
  for (const std::int64_t c : counts_) {
    sum += c;
  }
  return sum;
}

namespace {
struct Counts {
  double tp = 0;
  double fp = 0;
  double fn = 0;
};
Counts counts_of(const ConfusionMatrix& m, int k) {
  Counts c;
  c.tp = static_cast<double>(m.count(k, k));
  for (int j = 0; j < m.classes(); ++j) {
    if (j != k) {
      c.fp += static_cast<double>(m.count(j, k));
      c.fn += static_cast<double>(m.count(k, j));
    }
  }
  return c;
}
}  // namespace

double ConfusionMatrix::dice(int k) const {
  const Counts c = counts_of(*this, k);
  const double denominator = 2 * c.tp + c.fp + c.fn;
  return denominator == 0 ? std::numeric_limits<double>::quiet_NaN() : 2 * c.tp / denominator;
}

double ConfusionMatrix::iou(int k) const {
  const Counts c = counts_of(*this, k);
  const double denominator = c.tp + c.fp + c.fn;
  return denominator == 0 ? std::numeric_limits<double>::quiet_NaN() : c.tp / denominator;
}

double ConfusionMatrix::accuracy() const {
  std::int64_t correct = 0;
  for (int k = 0; k < classes_; ++k) {
    correct += count(k, k);
  }
  const std::int64_t all = total();
  return all == 0 ? std::numeric_limits<double>::quiet_NaN()
                  : static_cast<double>(correct) / static_cast<double>(all);
}

double ConfusionMatrix::mean_dice(bool skip_first) const {
  double sum = 0;
  int defined = 0;
  for (int k = skip_first ? 1 : 0; k < classes_; ++k) {
    const double d = dice(k);
    if (!std::isnan(d)) {
      sum += d;
      ++defined;
    }
  }
  return defined == 0 ? std::numeric_limits<double>::quiet_NaN() : sum / defined;
}

std::string training_log_csv(const std::vector<EpochRecord>& records,
                             const std::vector<LabelClass>& classes) {
  std::ostringstream out;
  out << "epoch,lr,train_loss,val_loss";
  for (const LabelClass& label : classes) {
    out << ",dice_" << label.name;
  }
  out << ",mean_dice,seconds\n";
  out << std::setprecision(9);
  for (const EpochRecord& r : records) {
    out << r.epoch << ',' << r.learning_rate << ',' << r.train_loss << ',' << r.val_loss;
    for (const double d : r.val_dice) {
      out << ',' << d;
    }
    out << ',' << r.val_mean_dice << ',' << r.seconds << '\n';
  }
  return out.str();
}

std::vector<EpochRecord> parse_training_log_csv(const std::string& text,
                                                const std::string& source) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line.rfind("epoch,lr,train_loss,val_loss", 0) != 0) {
    throw Error(ErrorCode::kCorruptData, "'" + source + "' is not a training_log.csv");
  }
  const auto columns = static_cast<std::size_t>(std::count(line.begin(), line.end(), ',') + 1);
  std::vector<EpochRecord> records;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    std::vector<double> values;
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');) {
      try {
        values.push_back(std::stod(field));
      } catch (const std::exception&) {
        values.push_back(std::numeric_limits<double>::quiet_NaN());
      }
    }
    if (values.size() != columns) {
      throw Error(ErrorCode::kCorruptData, "'" + source + "': a row has " +
                                               std::to_string(values.size()) + " fields, not " +
                                               std::to_string(columns));
    }
    EpochRecord r;
    r.epoch = static_cast<int>(values[0]);
    r.learning_rate = values[1];
    r.train_loss = values[2];
    r.val_loss = values[3];
    r.val_dice.assign(values.begin() + 4, values.end() - 2);
    r.val_mean_dice = values[columns - 2];
    r.seconds = values[columns - 1];
    records.push_back(r);
  }
  return records;
}

}  // namespace slidestream
