// Test helper (header-only): a server binary run as a child process that announces itself with one
// stdout line (dfm_rtsp_server prints "READY rtsp://..."); killed and reaped on destruction.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

extern char** environ;

namespace dfm::testtools {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { kill_now(SIGTERM); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Spawns argv[0] (stderr appended to log_path) and returns its first stdout line, or "" with
  // *why set when it does not print one within `timeout`.
  std::string start(const std::vector<std::string>& argv, const std::string& log_path, std::string* why,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    int fds[2];
    if (pipe(fds) != 0) return fail(why, "pipe() failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      pid_ = -1;
      return fail(why, "cannot run " + argv[0]);
    }
    out_ = fds[0];  // kept open until reaped: a later write must not SIGPIPE the child
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (text.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    size_t nl = text.find('\n');
    if (nl == std::string::npos) return fail(why, argv[0] + " printed no line: '" + text + "' (see " + log_path + ")");
    return text.substr(0, nl);
  }

  void signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // Sends `sig` (SIGCONT too, so a stopped child acts on it) and reaps the child; one that has not
  // exited after `grace` gets SIGKILL, so a server wedged in its own shutdown cannot hang a test.
  void kill_now(int sig, std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (pid_ > 0) {
      kill(pid_, sig);
      kill(pid_, SIGCONT);
      auto deadline = std::chrono::steady_clock::now() + grace;
      while (waitpid(pid_, nullptr, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() >= deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, nullptr, 0);
          break;
        }
        usleep(10 * 1000);
      }
      pid_ = -1;
    }
    if (out_ >= 0) close(out_);
    out_ = -1;
  }

 private:
  static std::string fail(std::string* why, std::string text) {
    if (why) *why = std::move(text);
    return "";
  }
  pid_t pid_ = -1;
  int out_ = -1;
};

}  // namespace dfm::testtools
