// `run_train`: the LibTorch training loop over the native networks of models/networks.hpp.
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>

#include "config_reader.hpp"
#include "networks.hpp"
#include "slidestream/core.hpp"
#include "slidestream/models/description.hpp"
#include "slidestream/training/augment.hpp"
#include "slidestream/training/config.hpp"
#include "slidestream/training/log.hpp"
#include "slidestream/training/metrics.hpp"
#include "slidestream/training/train.hpp"
#include "train_data.hpp"

namespace fs = std::filesystem;

namespace slidestream {

namespace {

using training_detail::PatchRef;
using training_detail::TrainData;

constexpr std::int64_t kIgnore = training_detail::kIgnoreIndex;

// splitmix64: independent per-sample seeds from (seed, epoch, position).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

double learning_rate_at(const TrainSettings& t, int epoch) {  // epoch is 1-based
  if (t.schedule == "step") {
    return t.learning_rate * std::pow(t.step_gamma, (epoch - 1) / t.step_epochs);
  }
  if (t.schedule == "cosine" && t.epochs > 1) {
    const double progress = static_cast<double>(epoch - 1) / (t.epochs - 1);
    return t.min_learning_rate +
           0.5 * (t.learning_rate - t.min_learning_rate) * (1 + std::cos(M_PI * progress));
  }
  return t.learning_rate;
}

ModelDescription describe(const TrainConfig& config) {
  ModelDescription d;
  d.architecture = config.model.architecture;
  d.geometry = config.geometry;
  d.geometry.branches.resize(config.input_branches());
  d.classes = config.classes;
  d.normalisation.mean = {0.5, 0.5, 0.5};
  d.normalisation.std = {0.25, 0.25, 0.25};
  d.network = config.model.network;
  return d;
}

// One batch as tensors: inputs per branch (N x 3 x H x W, normalised) and the labels per head,
// centre-cropped to the head's output size (N x h x w int64, kIgnore where unknown).
struct Batch {
  std::vector<torch::Tensor> inputs;
  std::vector<cv::Mat> labels;  // per sample and branch: sample * branches + b
  std::size_t samples = 0;
  std::size_t branches = 0;
};

Batch make_batch(const std::vector<PatchSet>& sets, const Normalisation& norm) {
  Batch batch;
  batch.samples = sets.size();
  batch.branches = sets.front().branches.size();
  for (std::size_t b = 0; b < batch.branches; ++b) {
    const cv::Mat& first = sets.front().branches[b];
    auto input = torch::empty({static_cast<std::int64_t>(sets.size()), first.rows, first.cols, 3},
                              torch::kUInt8);
    for (std::size_t i = 0; i < sets.size(); ++i) {
      const cv::Mat rgb =
          sets[i].branches[b].isContinuous() ? sets[i].branches[b] : sets[i].branches[b].clone();
      std::memcpy(input[static_cast<std::int64_t>(i)].data_ptr(), rgb.data, rgb.total() * 3);
    }
    const auto mean = torch::tensor(norm.mean, torch::kFloat).view({1, 3, 1, 1});
    const auto std = torch::tensor(norm.std, torch::kFloat).view({1, 3, 1, 1});
    batch.inputs.push_back(((input.permute({0, 3, 1, 2}).to(torch::kFloat) / 255.0) - mean) / std);
  }
  for (const PatchSet& set : sets) {
    for (std::size_t b = 0; b < batch.branches; ++b) {
      batch.labels.push_back(set.labels[b]);
    }
  }
  return batch;
}

// Labels of head `b`, centre-cropped to h x w.
torch::Tensor head_labels(const Batch& batch, std::size_t b, std::int64_t h, std::int64_t w) {
  auto labels = torch::empty({static_cast<std::int64_t>(batch.samples), h, w}, torch::kUInt8);
  for (std::size_t i = 0; i < batch.samples; ++i) {
    const cv::Mat& full = batch.labels[i * batch.branches + b];
    const cv::Rect crop(static_cast<int>((full.cols - w) / 2),
                        static_cast<int>((full.rows - h) / 2), static_cast<int>(w),
                        static_cast<int>(h));
    const cv::Mat cropped = full(crop).clone();
    std::memcpy(labels[static_cast<std::int64_t>(i)].data_ptr(), cropped.data, cropped.total());
  }
  return labels.to(torch::kLong);
}

struct LossParts {
  torch::Tensor loss;
  torch::Tensor target_labels;
};

// w_target * CE(target) + w_context * CE(context heads, weight split evenly); heads without a
// single labelled pixel are left out, so an all-ignore batch gives loss 0, never NaN.
LossParts multi_loss(const std::vector<torch::Tensor>& logits, const Batch& batch,
                     const TrainSettings& t, const torch::Tensor& class_weights) {
  LossParts parts;
  parts.loss = torch::zeros({}, torch::kFloat);
  auto weighted = torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore);
  if (class_weights.defined()) {
    weighted.weight(class_weights);
  }
  const std::size_t heads = logits.size();
  for (std::size_t b = 0; b < heads; ++b) {
    const auto labels = head_labels(batch, b, logits[b].size(2), logits[b].size(3));
    if (b == 0) {
      parts.target_labels = labels;
    }
    if ((labels != kIgnore).sum().item<std::int64_t>() == 0) {
      continue;
    }
    const double w = heads == 1 ? 1.0
                     : b == 0   ? t.loss_target_weight
                                : t.loss_context_weight / static_cast<double>(heads - 1);
    if (w > 0) {
      parts.loss =
          parts.loss + w * torch::nn::functional::cross_entropy(logits[b], labels, weighted);
    }
  }
  return parts;
}

struct Trainer {
  const TrainJob& job;
  const TrainConfig& config;
  TrainData data;
  ModelDescription description;
  models::SegmentationNet net{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer;
  torch::Tensor class_weights;
  Augmenter augmenter;
  TrainResult result;
  fs::path checkpoint;
  std::map<std::string, ConfusionMatrix> last_per_slide;  // of the last validation

  explicit Trainer(const TrainJob& j)
      : job(j),
        config(j.config),
        data(j),
        description(describe(j.config)),
        augmenter(j.config.training.augment, j.config.training.ignore_label) {
    torch::manual_seed(config.training.seed);
    net = models::make_network(description);
    optimizer = std::make_unique<torch::optim::Adam>(
        net->parameters(), torch::optim::AdamOptions(config.training.learning_rate)
                               .weight_decay(config.training.weight_decay));
    if (!config.training.class_weights.empty()) {
      std::vector<float> w(config.training.class_weights.begin(),
                           config.training.class_weights.end());
      class_weights = torch::tensor(w);
    }
    checkpoint = job.output / "checkpoint";
    result.train_slides = data.split().train;
    result.validation_slides = data.split().validation;
  }

  std::vector<PatchSet> load(const std::vector<PatchRef>& refs, std::size_t begin,
                             std::size_t count, bool augment, std::uint64_t epoch_seed) const {
    std::vector<PatchSet> sets;
    for (std::size_t i = begin; i < begin + count; ++i) {
      const PatchRef& ref = refs[i % refs.size()];
      sets.push_back(data.load(ref, augment ? &augmenter : nullptr, mix(epoch_seed + i)));
    }
    return sets;
  }

  double train_epoch(int epoch) {
    net->train();
    const TrainSettings& t = config.training;
    std::vector<PatchRef> order = data.train();
    const std::uint64_t epoch_seed = mix(t.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    std::mt19937_64 shuffle_random(epoch_seed);
    std::shuffle(order.begin(), order.end(), shuffle_random);
    const auto batch_size = static_cast<std::size_t>(t.batch_size);
    const std::size_t steps = t.steps_per_epoch > 0 ? static_cast<std::size_t>(t.steps_per_epoch)
                                                    : (order.size() + batch_size - 1) / batch_size;
    ProgressBar bar("epoch " + std::to_string(epoch), steps, job.progress);
    double sum = 0;
    for (std::size_t step = 0; step < steps; ++step) {
      const std::size_t begin = step * batch_size;
      const std::size_t count =
          t.steps_per_epoch > 0 ? batch_size : std::min(batch_size, order.size() - begin);
      const Batch batch =
          make_batch(load(order, begin, count, true, epoch_seed), description.normalisation);
      optimizer->zero_grad();
      const LossParts parts = multi_loss(net->forward(batch.inputs), batch, t, class_weights);
      if (parts.loss.requires_grad()) {
        parts.loss.backward();
        optimizer->step();
      }
      sum += parts.loss.item<double>();
      bar.advance();
    }
    bar.finish();
    return sum / static_cast<double>(steps);
  }

  void validate_epoch(EpochRecord& record) {
    net->eval();
    const torch::NoGradGuard no_grad;
    const auto& refs = data.validation();
    ConfusionMatrix confusion(static_cast<int>(config.classes.size()));
    last_per_slide.clear();
    double loss = 0;
    std::size_t batches = 0;
    const auto batch_size = static_cast<std::size_t>(config.training.batch_size);
    for (std::size_t begin = 0; begin < refs.size(); begin += batch_size) {
      const std::size_t count = std::min(batch_size, refs.size() - begin);
      const Batch batch = make_batch(load(refs, begin, count, false, 0), description.normalisation);
      const auto logits = net->forward(batch.inputs);
      const LossParts parts = multi_loss(logits, batch, config.training, class_weights);
      loss += parts.loss.item<double>();
      ++batches;
      const auto prediction = logits[0].argmax(1).to(torch::kUInt8).contiguous();
      const auto truth = parts.target_labels.to(torch::kUInt8).contiguous();
      const int h = static_cast<int>(prediction.size(1));
      const int w = static_cast<int>(prediction.size(2));
      for (std::int64_t i = 0; i < prediction.size(0); ++i) {
        const cv::Mat p(h, w, CV_8UC1, prediction[i].data_ptr());
        const cv::Mat y(h, w, CV_8UC1, truth[i].data_ptr());
        confusion.add(y, p, kIgnore);
        const PatchRef& ref = refs[begin + static_cast<std::size_t>(i)];
        const std::string& id = data.slide_id(ref);
        auto found = last_per_slide.find(id);
        if (found == last_per_slide.end()) {
          found = last_per_slide.emplace(id, ConfusionMatrix(confusion.classes())).first;
        }
        found->second.add(y, p, kIgnore);
      }
    }
    record.val_loss = batches > 0 ? loss / static_cast<double>(batches) : NAN;
    record.val_dice.clear();
    for (int k = 0; k < confusion.classes(); ++k) {
      record.val_dice.push_back(confusion.dice(k));
    }
    // Mean over foreground classes (value != 0), so background does not inflate it.
    const bool skip_background = config.classes.front().value == 0;
    record.val_mean_dice = confusion.mean_dice(skip_background);
  }

  std::string provenance() const;
  void save_checkpoint(int epoch);
  int resume();
  void write_logs() const;
  void write_per_slide() const;
  void run();
};

std::string Trainer::provenance() const {
  YAML::Node node;
  for (const std::string& file : data.files()) {
    node["data"].push_back(file);
  }
  for (const std::string& id : result.train_slides) {
    node["train_slides"].push_back(id);
  }
  node["validation_slides"] = YAML::Node(YAML::NodeType::Sequence);
  for (const std::string& id : result.validation_slides) {
    node["validation_slides"].push_back(id);
  }
  node["epochs"] = result.epochs.empty() ? 0 : result.epochs.back().epoch;
  node["best_epoch"] = result.best_epoch;
  node["best_mean_dice"] = result.best_mean_dice;
  node["seed"] = config.training.seed;
  node["slidestream_version"] = std::string(kVersion);
  node["config"] = YAML::Load(config.yaml);
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

void Trainer::write_logs() const {
  write_text_atomically(job.output / "training_log.csv",
                        training_log_csv(result.epochs, config.classes));
  write_training_plot(result.epochs, job.output / "training_plot.png");
}

// validation_slides.csv: Dice per validation slide at the best epoch (docs/FORMATS.md).
void Trainer::write_per_slide() const {
  std::ostringstream out;
  out << "slide";
  for (const LabelClass& label : config.classes) {
    out << ",dice_" << label.name;
  }
  out << ",mean_dice,pixels\n" << std::setprecision(6);
  const bool skip_background = config.classes.front().value == 0;
  for (const auto& [id, confusion] : last_per_slide) {
    out << id;
    for (int k = 0; k < confusion.classes(); ++k) {
      out << ',' << confusion.dice(k);
    }
    out << ',' << confusion.mean_dice(skip_background) << ',' << confusion.total() << '\n';
  }
  write_text_atomically(job.output / "validation_slides.csv", out.str());
}

void Trainer::save_checkpoint(int epoch) {
  create_output_folder(checkpoint);
  models::save_weights(*net, checkpoint / "weights.pt");
  {
    AtomicOutput out(checkpoint / "optimizer.pt");
    std::ofstream stream(out.temp_path(), std::ios::binary);  // a stream: see save_weights
    torch::save(*optimizer, stream);
    stream.close();
    if (!stream) {
      throw Error(ErrorCode::kOutputError, "cannot write '" +
                                               (checkpoint / "optimizer.pt").string() +
                                               "' (is the disk full or the folder read-only?)");
    }
    out.commit();
  }
  YAML::Node state;
  state["epoch"] = epoch;
  state["best_epoch"] = result.best_epoch;
  state["best_mean_dice"] = result.best_mean_dice;
  state["validation_slides"] = YAML::Node(YAML::NodeType::Sequence);
  for (const std::string& id : result.validation_slides) {
    state["validation_slides"].push_back(id);
  }
  YAML::Emitter out;
  out << state;
  write_text_atomically(checkpoint / "state.yaml", out.c_str());
}

// Loads the last checkpoint; returns the epoch it ended (0 when there is none).
int Trainer::resume() {
  const fs::path state_path = checkpoint / "state.yaml";
  if (!fs::exists(state_path)) {
    spdlog::warn("--resume: no checkpoint in '{}', starting from epoch 1", checkpoint.string());
    return 0;
  }
  const auto damaged = [&](const fs::path& file, const std::string& why) {
    return Error(ErrorCode::kCorruptData, "--resume: the checkpoint file '" + file.string() +
                                              "' is damaged (" + why + "); delete '" +
                                              checkpoint.string() +
                                              "' to start again, or train into a new -o folder");
  };
  std::vector<std::string> ids;
  int epoch = 0;
  try {
    // Read as a config is (config_reader.hpp), so a damage names the key.
    const config::Node state(YAML::LoadFile(state_path.string()), "");
    ids = state["validation_slides"].as<std::vector<std::string>>();
    result.best_epoch = state["best_epoch"].as<int>();
    result.best_mean_dice = state["best_mean_dice"].as<double>();
    epoch = state["epoch"].as<int>();
  } catch (const YAML::Exception& error) {
    throw damaged(state_path, error.msg);
  } catch (const config::KeyError& error) {
    throw damaged(state_path, error.what());
  }
  if (epoch < 0 || result.best_epoch < 0 || result.best_epoch > epoch) {
    throw damaged(state_path, "its epochs are inconsistent");
  }
  if (ids != result.validation_slides) {
    throw Error(ErrorCode::kInvalidConfig,
                "--resume: the checkpoint in '" + checkpoint.string() +
                    "' validated on other slides; resume with the same data and split");
  }
  models::load_weights(*net, checkpoint / "weights.pt", config.classes.size());
  try {
    torch::load(*optimizer, (checkpoint / "optimizer.pt").string());
  } catch (const std::exception& error) {
    // torch's message is a backtrace; its first line says what failed.
    const std::string what = error.what();
    throw damaged(checkpoint / "optimizer.pt", what.substr(0, what.find('\n')));
  }
  std::ifstream log(job.output / "training_log.csv");
  std::stringstream text;
  text << log.rdbuf();
  result.epochs = parse_training_log_csv(text.str(), (job.output / "training_log.csv").string());
  result.epochs.resize(
      std::min<std::size_t>(result.epochs.size(), static_cast<std::size_t>(epoch)));
  spdlog::info("resuming after epoch {} (best mean Dice {:.4f} at epoch {})", epoch,
               result.best_mean_dice, result.best_epoch);
  return epoch;
}

void Trainer::run() {
  if (config.training.threads > 0) {
    torch::set_num_threads(config.training.threads);
  }
  create_output_folder(job.output);
  const int done = job.resume ? resume() : 0;
  spdlog::info("training on {} patches of {} slides, validating on {} patches of {} slides",
               data.train().size(), result.train_slides.size(), data.validation().size(),
               result.validation_slides.size());
  if (data.validation().empty()) {
    spdlog::warn(
        "no validation slides (one slide, or training.validation.fraction = 0): Dice "
        "is not measured and the last epoch is kept; add slides or --val-data");
  }
  for (int epoch = done + 1; epoch <= config.training.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    EpochRecord record;
    record.epoch = epoch;
    record.learning_rate = learning_rate_at(config.training, epoch);
    for (auto& group : optimizer->param_groups()) {
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(record.learning_rate);
    }
    record.train_loss = train_epoch(epoch);
    if (!std::isfinite(record.train_loss)) {
      throw Error(ErrorCode::kInvalidConfig,
                  fmt::format("training diverged: the training loss became {} in epoch {} at "
                              "training.learning_rate {:g}; lower the learning rate (e.g. "
                              "--set training.learning_rate={:g}); no model was written for "
                              "this epoch",
                              record.train_loss, epoch, record.learning_rate,
                              config.training.learning_rate / 10));
    }
    validate_epoch(record);
    record.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.epochs.push_back(record);
    std::string dice;
    for (std::size_t k = 0; k < config.classes.size(); ++k) {
      dice += fmt::format(" {}={:.4f}", config.classes[k].name, record.val_dice[k]);
    }
    spdlog::info(
        "epoch {}/{}: lr {:.2e} train loss {:.4f} val loss {:.4f} Dice{} mean {:.4f} ({:.0f} s)",
        epoch, config.training.epochs, record.learning_rate, record.train_loss, record.val_loss,
        dice, record.val_mean_dice, record.seconds);
    const bool better = std::isfinite(record.val_mean_dice) &&
                        (result.best_epoch == 0 || record.val_mean_dice > result.best_mean_dice);
    if (better || (result.best_epoch == 0 && epoch == config.training.epochs)) {
      result.best_epoch = epoch;
      result.best_mean_dice = std::isfinite(record.val_mean_dice) ? record.val_mean_dice : 0;
      ModelDescription d = description;
      d.training_yaml = provenance();
      models::write_model_dir(*net, d, job.output);
      write_per_slide();
    }
    save_checkpoint(epoch);
    write_logs();
  }
  // The model directory's provenance names the whole run, not only the epochs up to the best.
  const fs::path yaml = job.output / "model.yaml";
  if (fs::exists(yaml)) {
    ModelDescription d = load_model_description(yaml);
    d.training_yaml = provenance();
    save_model_description(d, yaml);
  }
}

}  // namespace

void TrainJob::validate() const {
  config.validate();
  if (data.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "train needs --data DATASET.h5 (from 'extract')");
  }
  if (output.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "train needs -o MODEL_DIR");
  }
  std::vector<NamedPath> inputs;
  for (const fs::path& file : data) {
    inputs.push_back({"--data", file});
  }
  for (const fs::path& file : val_data) {
    inputs.push_back({"--val-data", file});
  }
  require_distinct_files(inputs, {{"-o", output}});
  std::error_code ec;
  if (fs::exists(output, ec) && !fs::is_directory(output, ec)) {
    throw Error(ErrorCode::kOutputError,
                "-o '" + output.string() + "' is a file, not a model folder; choose another -o");
  }
}

TrainResult run_train(const TrainJob& job) {
  job.validate();
  std::error_code ec;
  const bool fresh = !fs::exists(job.output, ec);
  try {
    Trainer trainer(job);
    trainer.run();
    return trainer.result;
  } catch (...) {
    // A run that fails leaves no half-made model folder behind (a resumed one keeps its own).
    if (fresh) {
      fs::remove_all(job.output, ec);
    }
    throw;
  }
}

}  // namespace slidestream
