// LD_PRELOAD shim for tests/test_concurrency.cpp: a process that takes an exclusive flock on a
// file named ".lock" stops itself (SIGSTOP) while holding it, so the test can start a second
// process against the same output folder at a known moment, then let the first one go on.
// Other flocks (HDF5 takes its own) pass through untouched.
#include <dlfcn.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <string>

namespace {

bool is_slide_lock(int descriptor) {
  std::array<char, 4096> target{};
  const std::string link = "/proc/self/fd/" + std::to_string(descriptor);
  const ssize_t length = ::readlink(link.c_str(), target.data(), target.size() - 1);
  if (length <= 0) {
    return false;
  }
  const std::string path(target.data(), static_cast<std::size_t>(length));
  const std::string name = "/.lock";
  return path.size() > name.size() &&
         path.compare(path.size() - name.size(), name.size(), name) == 0;
}

}  // namespace

extern "C" int flock(int descriptor, int operation) {  // NOLINT(readability-identifier-naming)
  using Flock = int (*)(int, int);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): dlsym returns void*.
  static const auto real_flock = reinterpret_cast<Flock>(::dlsym(RTLD_NEXT, "flock"));
  const int result = real_flock(descriptor, operation);
  if (result == 0 && (operation & LOCK_EX) != 0 && is_slide_lock(descriptor)) {
    std::raise(SIGSTOP);
  }
  return result;
}
