#include "bad_input_corpus.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace slidestream::testing {
namespace {

// The classes of bad input named by issue 11, plus plain usage errors.
// (Tables are function-local statics: built on first use, where an exception can be caught.)
const std::set<std::string>& problems() {
  static const std::set<std::string> names{"batch",  "library",   "overwrite", "numbers",
                                           "claims", "unbounded", "messages",  "usage"};
  return names;
}

// Each setup step has exactly one action key; these are the keys each action may carry.
const std::map<std::string, std::set<std::string>>& step_keys() {
  static const std::map<std::string, std::set<std::string>> keys{
      {"fixture", {"as"}},          // copy a fixture file or folder
      {"file", {"text"}},           // write a text file
      {"bytes", {"size", "seed"}},  // random bytes
      {"truncate", {"from", "keep"}},
      {"garble", {"from", "at", "length"}},     // random bytes over part of a copy
      {"zero_tile", {"from", "tile", "page"}},  // a TIFF copy with tiles' data zeroed
      {"edit", {"replace", "with"}},            // text replacement in a given file
      {"symlink", {"to"}},
      {"hardlink", {"to"}},
      {"fifo", {}},
      {"folder", {}},
  };
  return keys;
}

const std::set<std::string>& case_keys() {
  static const std::set<std::string> keys{"name", "problem", "given", "run", "env", "expect"};
  return keys;
}

const std::set<std::string>& expect_keys() {
  static const std::set<std::string> keys{"exit", "message", "creates", "changes"};
  return keys;
}

void require_keys(const YAML::Node& node, const std::set<std::string>& allowed,
                  const std::string& where) {
  if (!node.IsMap()) {
    throw std::runtime_error(where + " must be a map");
  }
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (allowed.count(key) == 0) {
      throw std::runtime_error(
          std::string(where).append(": unknown key '").append(key).append("'"));
    }
  }
}

std::string step_action(const YAML::Node& step, const std::string& where) {
  if (!step.IsMap()) {
    throw std::runtime_error(where + " must be a map");
  }
  std::string action;
  for (const auto& entry : step) {
    const auto key = entry.first.as<std::string>();
    if (step_keys().count(key) != 0) {
      if (!action.empty()) {
        throw std::runtime_error(std::string(where)
                                     .append(": two actions, '")
                                     .append(action)
                                     .append("' and '")
                                     .append(key)
                                     .append("'"));
      }
      action = key;
    }
  }
  if (action.empty()) {
    throw std::runtime_error(where +
                             ": no action (fixture, file, bytes, truncate, garble, "
                             "zero_tile, edit, symlink, hardlink, fifo, folder)");
  }
  std::set<std::string> allowed = step_keys().at(action);
  allowed.insert(action);
  require_keys(step, allowed, where);
  return action;
}

std::vector<std::string> string_list(const YAML::Node& node) {
  std::vector<std::string> values;
  for (const auto& item : node) {
    values.push_back(item.as<std::string>());
  }
  return values;
}

CorpusCase parse_case(const YAML::Node& node, const std::string& stem) {
  CorpusCase result;
  result.file = stem + ".yaml";
  result.id = stem + ".";
  require_keys(node, case_keys(), "case");
  if (!node["name"] || !node["run"] || !node["expect"] || !node["problem"]) {
    throw std::runtime_error("a case needs name, problem, run and expect");
  }
  result.id += node["name"].as<std::string>();
  result.problem = node["problem"].as<std::string>();
  if (problems().count(result.problem) == 0) {
    throw std::runtime_error(result.id + ": unknown problem '" + result.problem + "'");
  }
  result.run = node["run"].as<std::string>();
  for (const auto& step : node["given"]) {
    step_action(step, result.id + " given step");
    result.given.push_back(step);
  }
  for (const auto& entry : node["env"]) {
    result.env[entry.first.as<std::string>()] = entry.second.as<std::string>();
  }
  const YAML::Node expect = node["expect"];
  require_keys(expect, expect_keys(), result.id + " expect");
  if (!expect["exit"]) {
    throw std::runtime_error(result.id + ": expect needs exit");
  }
  result.exit_code = expect["exit"].as<int>();
  if (expect["message"]) {
    result.message = expect["message"].as<std::string>();
  } else if (result.exit_code != 0) {
    throw std::runtime_error(result.id + ": a failing case needs expect.message");
  }
  result.creates = string_list(expect["creates"]);
  result.changes = string_list(expect["changes"]);
  return result;
}

std::vector<CorpusCase> load_file(const fs::path& path) {
  const std::string stem = path.stem().string();
  std::vector<CorpusCase> cases;
  try {
    const YAML::Node root = YAML::LoadFile(path.string());
    require_keys(root, {"cases"}, path.filename().string());
    std::set<std::string> names;
    for (const auto& node : root["cases"]) {
      CorpusCase parsed = parse_case(node, stem);
      if (!names.insert(parsed.id).second) {
        throw std::runtime_error("two cases named " + parsed.id);
      }
      cases.push_back(std::move(parsed));
    }
  } catch (const std::exception& error) {
    CorpusCase broken;
    broken.id = stem + ".schema";
    broken.file = path.filename().string();
    broken.load_error = path.filename().string() + ": " + error.what();
    return {broken};
  }
  return cases;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path());
  }
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream << bytes;
  if (!stream) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (char& byte : bytes) {
    byte = static_cast<char>(random() & 0xffU);
  }
  return bytes;
}

// The source of a step that copies: a given file of the case, else a fixture.
fs::path source_of(const YAML::Node& step, const fs::path& dir) {
  const auto name = step["from"].as<std::string>();
  std::error_code ec;
  return fs::exists(dir / name, ec) ? dir / name : corpus_fixtures() / name;
}

// Zeroes the data of tile `tile` of TIFF directory `page` (every tile of it when `tile` < 0),
// so those JPEG tiles fail to decode.
void zero_tiles(const fs::path& path, int page, std::int64_t tile) {
  TIFF* tiff = TIFFOpen(path.c_str(), "r");
  if (tiff == nullptr || TIFFSetDirectory(tiff, static_cast<tdir_t>(page)) != 1) {
    if (tiff != nullptr) {
      TIFFClose(tiff);
    }
    throw std::runtime_error("zero_tile: no TIFF page " + std::to_string(page) + " in " +
                             path.string());
  }
  std::uint64_t* offsets = nullptr;
  std::uint64_t* counts = nullptr;
  const bool tiled = TIFFGetField(tiff, TIFFTAG_TILEOFFSETS, &offsets) == 1 &&
                     TIFFGetField(tiff, TIFFTAG_TILEBYTECOUNTS, &counts) == 1;
  const auto tiles = static_cast<std::int64_t>(tiled ? TIFFNumberOfTiles(tiff) : 0);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (std::int64_t i = 0; i < tiles; ++i) {
    if (tile < 0 || i == tile) {
      spans.emplace_back(offsets[i], counts[i]);
    }
  }
  TIFFClose(tiff);
  if (spans.empty()) {
    throw std::runtime_error("zero_tile: no tile " + std::to_string(tile) + " in " + path.string());
  }
  std::fstream stream(path, std::ios::binary | std::ios::in | std::ios::out);
  for (const auto& [offset, count] : spans) {
    stream.seekp(static_cast<std::streamoff>(offset));
    const std::string zeros(count, '\0');
    stream.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
}

void make_step(const YAML::Node& step, const fs::path& dir) {
  const std::string action = step_action(step, "given step");
  const auto target = step[action].as<std::string>();
  const fs::path path = dir / target;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path());
  }
  if (action == "fixture") {
    const fs::path as = step["as"] ? dir / step["as"].as<std::string>() : path;
    fs::create_directories(as.parent_path());
    fs::copy(corpus_fixtures() / target, as, fs::copy_options::recursive);
  } else if (action == "file") {
    write_bytes(path, step["text"] ? step["text"].as<std::string>() : std::string());
  } else if (action == "bytes") {
    write_bytes(path,
                random_bytes(step["size"].as<std::size_t>(1000), step["seed"].as<unsigned>(1)));
  } else if (action == "truncate") {
    const std::string bytes = read_bytes(source_of(step, dir));
    const auto keep =
        static_cast<std::size_t>(static_cast<double>(bytes.size()) * step["keep"].as<double>(0.5));
    write_bytes(path, bytes.substr(0, keep));
  } else if (action == "garble") {
    std::string bytes = read_bytes(source_of(step, dir));
    const auto at =
        static_cast<std::size_t>(static_cast<double>(bytes.size()) * step["at"].as<double>(0.5));
    const std::size_t length = std::min(step["length"].as<std::size_t>(4096), bytes.size() - at);
    bytes.replace(at, length, random_bytes(length, 7));
    write_bytes(path, bytes);
  } else if (action == "zero_tile") {
    fs::copy_file(source_of(step, dir), path, fs::copy_options::overwrite_existing);
    zero_tiles(path, step["page"].as<int>(0), step["tile"].as<std::int64_t>(-1));
  } else if (action == "edit") {
    std::string text = read_bytes(path);
    const auto old_text = step["replace"].as<std::string>();
    const std::size_t at = text.find(old_text);
    if (at == std::string::npos) {
      throw std::runtime_error("edit: '" + old_text + "' not in " + target);
    }
    text.replace(at, old_text.size(), step["with"].as<std::string>());
    write_bytes(path, text);
  } else if (action == "symlink") {
    fs::create_symlink(step["to"].as<std::string>(), path);
  } else if (action == "hardlink") {
    fs::create_hard_link(dir / step["to"].as<std::string>(), path);
  } else if (action == "fifo") {
    if (::mkfifo(path.c_str(), 0600) != 0) {
      throw std::runtime_error("mkfifo failed: " + path.string());
    }
  } else if (action == "folder") {
    fs::create_directories(path);
  }
}

// Builds the fixtures into a private folder renamed into place, once per build folder and
// again when fixtures.sh changes.
fs::path build_fixtures() {
  const fs::path source = fs::path(SLIDESTREAM_SOURCE_DIR) / "tests" / "bad_inputs";
  const fs::path root = fs::path(SLIDESTREAM_BINARY_DIR) / "testdata";
  fs::create_directories(root);
  fs::path dir = root / "corpus";
  const std::string stamp = std::to_string(std::hash<std::string>{}(
      read_bytes(source / "fixtures.sh") + read_bytes(source / "fixtures" / "extract.yaml") +
      read_bytes(source / "fixtures" / "train.yaml")));
  const int lock = ::open((root / "corpus.lock").c_str(), O_CREAT | O_RDWR, 0644);
  ::flock(lock, LOCK_EX);
  if (read_bytes(dir / ".stamp") != stamp) {
    const fs::path temp = root / ("corpus.tmp" + std::to_string(::getpid()));
    fs::remove_all(temp);
    fs::create_directories(temp);
    const auto result = run_shell("bash " + (source / "fixtures.sh").string() + " " +
                                  SLIDESTREAM_CLI_PATH + " " + temp.string() + " 2>&1");
    if (result.exit_code != 0) {
      ::close(lock);
      throw std::runtime_error("tests/bad_inputs/fixtures.sh failed:\n" + result.output);
    }
    write_bytes(temp / ".stamp", stamp);
    fs::remove_all(dir);
    fs::rename(temp, dir);
  }
  ::close(lock);
  return dir;
}

}  // namespace

std::vector<CorpusCase> load_corpus(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<CorpusCase> cases;
  for (const fs::path& file : files) {
    for (CorpusCase& parsed : load_file(file)) {
      cases.push_back(std::move(parsed));
    }
  }
  return cases;
}

fs::path corpus_fixtures() {
  static const fs::path dir = build_fixtures();
  return dir;
}

void make_given(const CorpusCase& corpus_case, const fs::path& dir) {
  for (const YAML::Node& step : corpus_case.given) {
    make_step(step, dir);
  }
}

namespace {

void snapshot_into(const fs::path& root, const fs::path& dir,
                   std::map<std::string, std::string>& entries) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path& path = entry.path();
    const std::string relative = fs::relative(path, root, ec).string();
    const fs::file_status status = entry.symlink_status(ec);
    if (fs::is_symlink(status)) {
      entries[relative] = "link:" + fs::read_symlink(path, ec).string();
    } else if (fs::is_directory(status)) {
      entries[relative + "/"] = "folder";
      snapshot_into(root, path, entries);
    } else if (fs::is_regular_file(status)) {
      entries[relative] = "file:" + std::to_string(std::hash<std::string>{}(read_bytes(path)));
    } else {
      entries[relative] = "special";
    }
  }
}

}  // namespace

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> entries;
  snapshot_into(dir, dir, entries);
  return entries;
}

}  // namespace slidestream::testing
