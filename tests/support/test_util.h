// Helpers shared by the tests: temporary directories, reading files, finding child processes, and
// running the msinfer binary (MSI_BINARY_PATH) with exact arguments (no shell) under a time limit.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace msi::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// The pids of the processes whose parent is `parent` and whose command line contains `needle`
// (e.g. a deployment's worker processes: "--role expert --index 1").
inline std::vector<pid_t> children_matching(pid_t parent, const std::string& needle) {
  std::vector<pid_t> pids;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = slurp(e.path() / "stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::string cmdline = slurp(e.path() / "cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(needle) != std::string::npos) pids.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return pids;
}

// A fresh directory under /tmp, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("msinfer-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `bytes` to path()/name and returns that path.
  std::filesystem::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path_ / name, std::ios::binary) << bytes;
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal (or the time limit)
  std::string out, err;
};

// Runs `program args...` with stdout and stderr captured; killed after `timeout_s` seconds.
inline RunResult run_program(const std::string& program, const std::vector<std::string>& args,
                             unsigned timeout_s = 120) {
  TempDir tmp;
  const auto out = tmp.path() / "out", err = tmp.path() / "err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fo = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int fe = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    std::vector<char*> argv = {const_cast<char*>(program.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::alarm(timeout_s);  // survives exec: SIGALRM ends a hung run
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

#ifdef MSI_BINARY_PATH
inline RunResult msinfer(const std::vector<std::string>& args, unsigned timeout_s = 120) {
  return run_program(MSI_BINARY_PATH, args, timeout_s);
}

// Runs `msinfer <args>` through the shell (for arguments written with shell quoting).
inline RunResult msinfer_shell(const std::string& args, unsigned timeout_s = 120) {
  TempDir tmp;
  const auto out = tmp.path() / "out", err = tmp.path() / "err";
  const std::string cmd = "timeout " + std::to_string(timeout_s) + " " + std::string(MSI_BINARY_PATH) + " " +
                          args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}
#endif

}  // namespace msi::test
