// Bench helpers: timing, sgemm, Prometheus text, HTTP GET, child processes, /proc, SVG charts.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include <opencv2/core.hpp>

#include "dfm/bench/bench.h"

extern char** environ;

namespace dfm::bench {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

Timing time_calls(const std::function<void()>& fn, double min_time_s, int min_reps, int warmup) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < min_reps || seconds_since(start) < min_time_s) {
    const auto t0 = Clock::now();
    fn();
    ms.push_back(seconds_since(t0) * 1000.0);
    if (ms.size() >= 5000) break;
  }
  Timing t;
  t.reps = static_cast<int>(ms.size());
  std::sort(ms.begin(), ms.end());
  t.min_ms = ms.front();
  const size_t n = ms.size();
  t.median_ms = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  return t;
}

double measure_sgemm_gflops(int n, double min_time_s) {
  cv::Mat a(n, n, CV_32F), b(n, n, CV_32F), c;
  cv::randu(a, -1.0, 1.0);
  cv::randu(b, -1.0, 1.0);
  Timing t = time_calls([&] { cv::gemm(a, b, 1.0, cv::noArray(), 0.0, c); }, min_time_s, 5, 2);
  // Best run: the machine's capability, as free of interference from other jobs as we can see it.
  return 2.0 * n * static_cast<double>(n) * n / (t.min_ms / 1000.0) / 1e9;
}

// ---- Prometheus text ----------------------------------------------------------------------------

std::vector<PromSample> parse_prometheus(const std::string& text) {
  std::vector<PromSample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    PromSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) break;
        std::string key = line.substr(i, eq - i);
        size_t q = eq + 1;
        if (q >= line.size() || line[q] != '"') break;
        std::string val;
        size_t j = q + 1;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            val += line[j] == 'n' ? '\n' : line[j];
          } else {
            val += line[j];
          }
        }
        s.labels[key] = val;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i < line.size() && line[i] == '}') ++i;
    }
    while (i < line.size() && line[i] == ' ') ++i;
    std::string v = line.substr(i);
    v = v.substr(0, v.find(' '));  // drop an optional timestamp
    if (v == "+Inf") s.value = std::numeric_limits<double>::infinity();
    else if (v == "-Inf") s.value = -std::numeric_limits<double>::infinity();
    else if (v == "NaN") s.value = std::numeric_limits<double>::quiet_NaN();
    else {
      char* end = nullptr;
      s.value = std::strtod(v.c_str(), &end);
      if (end == v.c_str()) continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

double prom_value(const std::vector<PromSample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      ok = ok && it != s.labels.end() && it->second == v;
    }
    if (ok) sum += s.value;
  }
  return sum;
}

Histogram prom_histogram(const std::vector<PromSample>& samples, const std::string& name) {
  Histogram h;
  std::vector<std::pair<double, double>> b;
  for (const auto& s : samples) {
    if (s.name == name + "_bucket") {
      auto it = s.labels.find("le");
      if (it == s.labels.end()) continue;
      const double le = it->second == "+Inf" ? std::numeric_limits<double>::infinity() : std::strtod(it->second.c_str(), nullptr);
      b.emplace_back(le, s.value);
    } else if (s.name == name + "_sum") {
      h.sum += s.value;
    } else if (s.name == name + "_count") {
      h.count += s.value;
    }
  }
  std::sort(b.begin(), b.end());
  for (const auto& [le, c] : b) {
    h.bounds.push_back(le);
    h.cumulative.push_back(c);
  }
  return h;
}

Histogram histogram_delta(const Histogram& later, const Histogram& earlier) {
  Histogram d = later;
  if (earlier.bounds == later.bounds) {
    for (size_t i = 0; i < d.cumulative.size(); ++i) d.cumulative[i] -= earlier.cumulative[i];
  }
  d.sum -= earlier.sum;
  d.count -= earlier.count;
  return d;
}

double histogram_quantile(const Histogram& h, double q) {
  if (h.cumulative.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double total = h.cumulative.back();
  if (!(total > 0)) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * total;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (h.cumulative[i] >= rank) {
      if (std::isinf(h.bounds[i])) return i > 0 ? h.bounds[i - 1] : std::numeric_limits<double>::quiet_NaN();
      const double lo = i > 0 ? h.bounds[i - 1] : 0.0;
      const double below = i > 0 ? h.cumulative[i - 1] : 0.0;
      const double in = h.cumulative[i] - below;
      if (in <= 0) return h.bounds[i];
      return lo + (h.bounds[i] - lo) * (rank - below) / in;
    }
  }
  return h.bounds.back();
}

// ---- HTTP -----------------------------------------------------------------------------------------

Result<std::string> http_get(const std::string& host, int port, const std::string& path, double timeout_s) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError("socket(): " + std::string(std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{static_cast<time_t>(timeout_s), static_cast<suseconds_t>((timeout_s - std::floor(timeout_s)) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return InvalidArgument("http_get: not an IPv4 address: " + host);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return IoError("connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return IoError("send failed");
  std::string resp;
  char buf[16384];
  const auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR)) continue;
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  size_t sep = resp.find("\r\n\r\n");
  if (sep == std::string::npos) return IoError("http_get " + path + ": no complete response");
  if (resp.compare(0, 12, "HTTP/1.1 200") != 0 && resp.compare(0, 12, "HTTP/1.0 200") != 0) {
    return IoError("http_get " + path + ": " + resp.substr(0, resp.find("\r\n")));
  }
  return resp.substr(sep + 4);
}

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// ---- child processes -------------------------------------------------------------------------------

Child::~Child() { stop(2.0); }

Status Child::start(const std::vector<std::string>& argv, const std::string& log_path, bool capture_stdout) {
  int fds[2] = {-1, -1};
  if (capture_stdout && pipe2(fds, O_CLOEXEC) != 0) return IoError("pipe() failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (capture_stdout) {
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child gets a clean signal mask (dfmon watch blocks SIGINT/SIGTERM itself and waits for them).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (capture_stdout) ::close(fds[1]);
  if (rc != 0) {
    if (capture_stdout) ::close(fds[0]);
    pid_ = -1;
    return IoError("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  out_ = capture_stdout ? fds[0] : -1;
  return Status::Ok();
}

Result<std::string> Child::read_line(double timeout_s) {
  if (out_ < 0) return InvalidArgument("stdout not captured");
  const auto t0 = Clock::now();
  while (buffered_.find('\n') == std::string::npos && seconds_since(t0) < timeout_s) {
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) break;
    buffered_.append(buf, static_cast<size_t>(n));
  }
  size_t nl = buffered_.find('\n');
  if (nl == std::string::npos) return Timeout("no line on stdout within " + std::to_string(timeout_s) + " s");
  std::string line = buffered_.substr(0, nl);
  buffered_.erase(0, nl + 1);
  return line;
}

bool Child::wait(double timeout_s, int* code) {
  if (pid_ <= 0) return true;
  const auto t0 = Clock::now();
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      pid_ = -1;
      if (out_ >= 0) ::close(out_);
      out_ = -1;
      return true;
    }
    if (r < 0) {
      pid_ = -1;
      return true;
    }
    if (seconds_since(t0) >= timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int Child::stop(double grace_s) {
  if (pid_ <= 0) return -1;
  int code = -1;
  ::kill(pid_, SIGTERM);
  if (!wait(grace_s, &code)) {
    ::kill(pid_, SIGKILL);
    wait(5.0, &code);
    code = -1;
  }
  return code;
}

int run_process(const std::vector<std::string>& argv, const std::string& log_path, double timeout_s) {
  Child c;
  if (auto st = c.start(argv, log_path, false); !st.ok()) {
    std::ofstream(log_path, std::ios::app) << st.message() << "\n";
    return -1;
  }
  int code = -1;
  if (!c.wait(timeout_s, &code)) {
    c.stop(2.0);
    return -1;
  }
  return code;
}

// ---- /proc ----------------------------------------------------------------------------------------

long proc_vm_hwm_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double proc_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t rp = text.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream rest(text.substr(rp + 2));
  std::vector<std::string> f;
  std::string tok;
  while (rest >> tok) f.push_back(tok);
  // After the command: state(0) ... utime is field 14 of the whole line -> index 11 here, stime 12.
  if (f.size() < 13) return -1;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / hz;
}

// ---- SVG ------------------------------------------------------------------------------------------

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(double v) {
  char b[32];
  if (std::fabs(v) >= 100 || v == std::floor(v)) std::snprintf(b, sizeof b, "%.0f", v);
  else if (std::fabs(v) >= 10) std::snprintf(b, sizeof b, "%.1f", v);
  else std::snprintf(b, sizeof b, "%.2g", v);
  return b;
}

std::string coord(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

double nice_step(double range, int target) {
  const double raw = range / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, const std::vector<HLine>& hlines) {
  const double W = 720, H = 420, L = 70, R = 200, T = 40, B = 55;
  const double pw = W - L - R, ph = H - T - B;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymax = 0;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  for (const auto& h : hlines) {
    if (std::isfinite(h.y)) ymax = std::max(ymax, h.y);
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
  if (xmax <= xmin) xmax = xmin + 1;
  if (!(ymax > 0)) ymax = 1;
  const double ystep = nice_step(ymax * 1.08, 6);
  const double ytop = std::ceil(ymax * 1.08 / ystep) * ystep;
  auto X = [&](double x) { return L + (x - xmin) / (xmax - xmin) * pw; };
  auto Y = [&](double y) { return T + ph - y / ytop * ph; };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"};
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << esc(title) << "</text>\n";
  // Grid and axes.
  for (double y = 0; y <= ytop + 1e-9; y += ystep) {
    o << "<line x1=\"" << L << "\" y1=\"" << Y(y) << "\" x2=\"" << L + pw << "\" y2=\"" << Y(y) << "\" stroke=\"#e0e0e0\"/>\n";
    o << "<text x=\"" << L - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">" << num(y) << "</text>\n";
  }
  std::vector<double> xt;
  for (const auto& s : series) xt.insert(xt.end(), s.x.begin(), s.x.end());
  std::sort(xt.begin(), xt.end());
  xt.erase(std::unique(xt.begin(), xt.end()), xt.end());
  for (double x : xt) {
    o << "<line x1=\"" << X(x) << "\" y1=\"" << T << "\" x2=\"" << X(x) << "\" y2=\"" << T + ph << "\" stroke=\"#f0f0f0\"/>\n";
    o << "<text x=\"" << X(x) << "\" y=\"" << T + ph + 16 << "\" text-anchor=\"middle\">" << num(x) << "</text>\n";
  }
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\"" << ph << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<text x=\"" << L + pw / 2 << "\" y=\"" << H - 14 << "\" text-anchor=\"middle\">" << esc(x_label) << "</text>\n";
  o << "<text transform=\"translate(18," << T + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << esc(y_label) << "</text>\n";
  double ly = T + 10;
  for (size_t k = 0; k < hlines.size(); ++k) {
    if (!std::isfinite(hlines[k].y)) continue;
    o << "<line x1=\"" << L << "\" y1=\"" << Y(hlines[k].y) << "\" x2=\"" << L + pw << "\" y2=\"" << Y(hlines[k].y)
      << "\" stroke=\"#555\" stroke-dasharray=\"2,3\"/>\n";
    o << "<line x1=\"" << L + pw + 12 << "\" y1=\"" << ly << "\" x2=\"" << L + pw + 36 << "\" y2=\"" << ly
      << "\" stroke=\"#555\" stroke-dasharray=\"2,3\"/>\n";
    o << "<text x=\"" << L + pw + 42 << "\" y=\"" << ly + 4 << "\">" << esc(hlines[k].name) << "</text>\n";
    ly += 18;
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const char* c = colors[k % 8];
    std::string pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      pts += coord(X(s.x[i])) + "," + coord(Y(s.y[i])) + " ";
      o << "<circle cx=\"" << X(s.x[i]) << "\" cy=\"" << Y(s.y[i]) << "\" r=\"3\" fill=\"" << c << "\"/>\n";
    }
    o << "<polyline points=\"" << pts << "\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\""
      << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
    o << "<line x1=\"" << L + pw + 12 << "\" y1=\"" << ly << "\" x2=\"" << L + pw + 36 << "\" y2=\"" << ly << "\" stroke=\"" << c
      << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
    o << "<text x=\"" << L + pw + 42 << "\" y=\"" << ly + 4 << "\">" << esc(s.name) << "</text>\n";
    ly += 18;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace dfm::bench
