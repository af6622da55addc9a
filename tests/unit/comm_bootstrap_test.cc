// The TCP rendezvous: threads and fork()ed processes as ranks exchanging values, all_gather and
// barriers; timeouts that name the key and the rank; connecting before the server listens and to
// nothing at all; a server that shuts down or whose process is killed while a client waits;
// garbage and hostile peers on both sides; size limits; no leaked descriptors or threads; and the
// launcher variables (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE).
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm/bootstrap.h"
#include "status_asserts.h"

namespace msi::comm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using msi::test::describe;

BootstrapOptions make_options(int rank, int world_size, int port,
                              milliseconds timeout = milliseconds(5000)) {
  BootstrapOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.rank = rank;
  o.world_size = world_size;
  o.timeout = timeout;
  return o;
}

std::vector<std::byte> bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}
std::string text(const std::vector<std::byte>& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

int64_t ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
}

// A port that was free a moment ago (nothing listens on it).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A blocking raw TCP connection to 127.0.0.1:port.
int raw_connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  return fd;
}

void raw_send(int fd, const std::vector<std::byte>& b) {
  ASSERT_EQ(send(fd, b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size()));
}

// Reads until the peer closes (true) or `ms` pass (false); what was read goes to *got.
bool read_until_eof(int fd, int ms, std::vector<std::byte>* got = nullptr) {
  const auto deadline = Clock::now() + milliseconds(ms);
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0) continue;
    std::byte buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
    if (got != nullptr) got->insert(got->end(), buf, buf + n);
  }
  return false;
}

void put_u32(std::vector<std::byte>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
std::vector<std::byte> hello(uint32_t version, int rank, int world_size) {
  std::vector<std::byte> h = bytes("MSI-RDZV");
  put_u32(h, version);
  put_u32(h, static_cast<uint32_t>(rank));
  put_u32(h, static_cast<uint32_t>(world_size));
  return h;
}

size_t count_dir(const char* path) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++n;
  return n;
}

// Every rank publishes a value, reads everyone's, all_gathers, counts, and meets at barriers.
void exchange(Rendezvous& rdzv) {
  const int rank = rdzv.rank();
  const int world = rdzv.world_size();
  EXPECT_OK(rdzv.set(fmt::format("handle/{}", rank), fmt::format("ipc-handle-of-{}", rank)));
  for (int r = 0; r < world; ++r) {
    auto v = rdzv.get(fmt::format("handle/{}", r));
    ASSERT_OK(v);
    EXPECT_EQ(text(*v), fmt::format("ipc-handle-of-{}", r));
  }
  // Values of different lengths, one empty.
  const std::string mine = rank == 1 ? std::string() : std::string(64 + rank * 37, 'a' + rank);
  auto all = rdzv.all_gather("nccl-id", bytes(mine));
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    const std::string want = r == 1 ? std::string() : std::string(64 + r * 37, 'a' + r);
    EXPECT_EQ(text((*all)[r]), want) << "rank " << rank << " sees rank " << r;
  }
  EXPECT_OK(rdzv.add("arrivals", 1));
  EXPECT_OK(rdzv.barrier("init"));
  auto arrivals = rdzv.add("arrivals", 0);
  ASSERT_OK(arrivals);
  EXPECT_EQ(*arrivals, world);
  EXPECT_OK(rdzv.barrier("init"));  // a name may be reused
  EXPECT_OK(rdzv.barrier("done"));
}

TEST(CommBootstrapTest, ThreadsAsRanks) {
  for (int world : {1, 4, 16}) {
    SCOPED_TRACE(fmt::format("world_size {}", world));
    auto server = Rendezvous::serve(make_options(0, world, 0));
    ASSERT_OK(server);
    const int port = (*server)->port();
    EXPECT_GT(port, 0);
    std::vector<std::thread> threads;
    for (int r = 1; r < world; ++r) {
      threads.emplace_back([r, world, port] {
        auto client = Rendezvous::connect(make_options(r, world, port));
        ASSERT_OK(client);
        exchange(**client);
      });
    }
    exchange(**server);
    for (auto& t : threads) t.join();
  }
}

TEST(CommBootstrapTest, BarrierWaitsForTheLastRank) {
  auto server = Rendezvous::serve(make_options(0, 2, 0));
  ASSERT_OK(server);
  std::thread late([port = (*server)->port()] {
    auto client = Rendezvous::connect(make_options(1, 2, port));
    ASSERT_OK(client);
    std::this_thread::sleep_for(milliseconds(150));
    EXPECT_OK((*client)->barrier("b"));
  });
  const auto t0 = Clock::now();
  EXPECT_OK((*server)->barrier("b"));
  EXPECT_GE(ms_since(t0), 140);
  late.join();
}

TEST(CommBootstrapTest, GetTimesOutNamingKeyAndRank) {
  auto server = Rendezvous::serve(make_options(0, 2, 0, milliseconds(150)));
  ASSERT_OK(server);
  auto client = Rendezvous::connect(make_options(1, 2, (*server)->port(), milliseconds(150)));
  ASSERT_OK(client);

  auto t0 = Clock::now();
  auto v = (*client)->get("never/set");
  EXPECT_EQ(v.status().code(), StatusCode::kDeadlineExceeded) << describe(v);
  EXPECT_NE(v.status().message().find("never/set"), std::string::npos) << describe(v);
  EXPECT_NE(v.status().message().find("rank 1"), std::string::npos) << describe(v);
  EXPECT_GE(ms_since(t0), 140);
  EXPECT_LT(ms_since(t0), 1500);

  // The connection stays usable: a late answer to the timed-out get is skipped.
  EXPECT_OK((*server)->set("never/set", "late"));
  auto late = (*client)->get("never/set");
  ASSERT_OK(late);
  EXPECT_EQ(text(*late), "late");

  // A barrier that only one rank reaches says how many arrived.
  t0 = Clock::now();
  const Status b = (*server)->barrier("lonely");
  EXPECT_EQ(b.code(), StatusCode::kDeadlineExceeded) << b.to_string();
  EXPECT_NE(b.message().find("barrier 'lonely'"), std::string::npos) << b.to_string();
  EXPECT_NE(b.message().find("1 of 2"), std::string::npos) << b.to_string();
  EXPECT_NE(b.message().find("rank 0"), std::string::npos) << b.to_string();
  EXPECT_LT(ms_since(t0), 1500);
}

TEST(CommBootstrapTest, ConnectRetriesUntilTheServerListens) {
  const int port = free_port();
  std::optional<Result<std::unique_ptr<Rendezvous>>> client;
  std::thread worker([&] { client.emplace(Rendezvous::connect(make_options(1, 2, port))); });
  std::this_thread::sleep_for(milliseconds(200));
  auto server = Rendezvous::serve(make_options(0, 2, port));
  ASSERT_OK(server);
  EXPECT_EQ((*server)->port(), port);
  worker.join();
  ASSERT_TRUE(client.has_value());
  ASSERT_OK(*client);
  std::thread t([&] { EXPECT_OK((**client)->all_gather("x", bytes("one"))); });
  auto all = (*server)->all_gather("x", bytes("zero"));
  t.join();
  ASSERT_OK(all);
  EXPECT_EQ(text((*all)[0]), "zero");
  EXPECT_EQ(text((*all)[1]), "one");
}

TEST(CommBootstrapTest, ConnectToNothingTimesOut) {
  const int port = free_port();
  const auto t0 = Clock::now();
  auto client = Rendezvous::connect(make_options(3, 4, port, milliseconds(200)));
  ASSERT_FALSE(client.is_ok());
  const StatusCode code = client.status().code();
  EXPECT_TRUE(code == StatusCode::kDeadlineExceeded || code == StatusCode::kUnavailable)
      << describe(client);
  EXPECT_NE(client.status().message().find(fmt::format("127.0.0.1:{}", port)), std::string::npos)
      << describe(client);
  EXPECT_NE(client.status().message().find("rank 3"), std::string::npos) << describe(client);
  EXPECT_GE(ms_since(t0), 190);
  EXPECT_LT(ms_since(t0), 1500);
}

TEST(CommBootstrapTest, ServerShutdownWakesWaiters) {
  auto server = Rendezvous::serve(make_options(0, 2, 0));
  ASSERT_OK(server);
  const std::string address = (*server)->address();
  auto client = Rendezvous::connect(make_options(1, 2, (*server)->port(), milliseconds(5000)));
  ASSERT_OK(client);
  std::optional<Status> got;
  int64_t waited_ms = 0;
  std::thread waiter([&] {
    const auto t0 = Clock::now();
    got = (*client)->get("never").status();
    waited_ms = ms_since(t0);
  });
  std::this_thread::sleep_for(milliseconds(100));
  server.value().reset();  // rank 0 goes away
  waiter.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), StatusCode::kUnavailable) << got->to_string();
  EXPECT_NE(got->message().find(address), std::string::npos) << got->to_string();
  EXPECT_LT(waited_ms, 2000);
  // Every later call fails fast.
  const auto t0 = Clock::now();
  const Status s = (*client)->set("k", "v");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.to_string();
  EXPECT_LT(ms_since(t0), 100);
}

TEST(CommBootstrapTest, ServerProcessKilledMidWait) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    auto server = Rendezvous::serve(make_options(0, 2, 0));
    const int port = server.is_ok() ? (*server)->port() : 0;
    [[maybe_unused]] ssize_t n = write(pipe_fds[1], &port, sizeof(port));
    sleep(10);  // killed long before
    _exit(0);
  }
  close(pipe_fds[1]);
  int port = 0;
  pollfd p{pipe_fds[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  ASSERT_EQ(read(pipe_fds[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  close(pipe_fds[0]);
  ASSERT_GT(port, 0);
  auto client = Rendezvous::connect(make_options(1, 2, port, milliseconds(5000)));
  ASSERT_OK(client);
  std::thread killer([child] {
    std::this_thread::sleep_for(milliseconds(100));
    kill(child, SIGKILL);
  });
  const auto t0 = Clock::now();
  auto v = (*client)->get("never");
  killer.join();
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable) << describe(v);
  EXPECT_NE(v.status().message().find(fmt::format("127.0.0.1:{}", port)), std::string::npos)
      << describe(v);
  EXPECT_LT(ms_since(t0), 2000);
  int wstatus = 0;
  EXPECT_EQ(waitpid(child, &wstatus, 0), child);
}

TEST(CommBootstrapTest, GarbagePeersDoNotBreakTheServer) {
  auto server = Rendezvous::serve(make_options(0, 2, 0));
  ASSERT_OK(server);
  const int port = (*server)->port();

  // An HTTP client is dropped without an answer.
  const int http = raw_connect(port);
  raw_send(http, bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::vector<std::byte> got;
  EXPECT_TRUE(read_until_eof(http, 2000, &got));
  EXPECT_TRUE(got.empty());
  close(http);

  // Another protocol version is refused with a reason, then closed.
  const int old_version = raw_connect(port);
  raw_send(old_version, hello(99, 1, 2));
  got.clear();
  EXPECT_TRUE(read_until_eof(old_version, 2000, &got));
  EXPECT_NE(text(got).find("version 99"), std::string::npos) << text(got);
  close(old_version);

  // A valid hello, then a frame claiming 4 GiB: dropped.
  const int huge = raw_connect(port);
  std::vector<std::byte> frame = hello(1, 1, 2);
  put_u32(frame, 0xFFFFFFFFu);
  raw_send(huge, frame);
  EXPECT_TRUE(read_until_eof(huge, 2000));
  close(huge);

  // Half a request, then gone; and a peer that connects and says nothing (kept open).
  const int half = raw_connect(port);
  frame = hello(1, 1, 2);
  put_u32(frame, 100);
  put_u32(frame, 1);
  raw_send(half, frame);
  close(half);
  const int silent = raw_connect(port);
  const int random = raw_connect(port);
  std::vector<std::byte> noise(3000);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<std::byte>(i * 131 + 7);
  raw_send(random, noise);
  EXPECT_TRUE(read_until_eof(random, 2000));
  close(random);

  // A client of another world size is refused, naming both.
  auto wrong = Rendezvous::connect(make_options(1, 3, port));
  EXPECT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("world_size 3"), std::string::npos) << describe(wrong);

  // The server still serves.
  std::thread t([port] {
    auto client = Rendezvous::connect(make_options(1, 2, port));
    ASSERT_OK(client);
    exchange(**client);
  });
  exchange(**server);
  t.join();
  close(silent);
}

TEST(CommBootstrapTest, ConnectToAPeerThatIsNoServer) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(a);
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread http_server([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    const std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    read_until_eof(fd, 2000);
    close(fd);
  });
  auto client = Rendezvous::connect(make_options(1, 2, ntohs(a.sin_port), milliseconds(1000)));
  EXPECT_FALSE(client.is_ok());
  EXPECT_NE(client.status().message().find("not a msinfer rendezvous server"), std::string::npos)
      << describe(client);
  http_server.join();
  close(listener);
}

TEST(CommBootstrapTest, ProcessesAsRanks) {
  constexpr int kWorld = 4;
  auto server = Rendezvous::serve(make_options(0, kWorld, 0));
  ASSERT_OK(server);
  const int port = (*server)->port();
  std::vector<pid_t> children;
  for (int r = 1; r < kWorld; ++r) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Only the client side here; failures go to stderr and the exit code. Rank 1 first
      // destroys its copy of the parent's server, which must leave the parent's alone.
      if (r == 1) server.value().reset();
      int code = 0;
      auto client = Rendezvous::connect(make_options(r, kWorld, port));
      if (!client.is_ok()) {
        fprintf(stderr, "rank %d: %s\n", r, client.status().to_string().c_str());
        _exit(2);
      }
      const std::string mine = std::to_string(getpid());
      auto all = (*client)->all_gather("pid", bytes(mine));
      if (!all.is_ok() || text((*all)[r]) != mine || text((*all)[0]) != std::to_string(getppid())) {
        fprintf(stderr, "rank %d: all_gather: %s\n", r, all.status().to_string().c_str());
        code = 3;
      }
      const Status b = (*client)->barrier("done");
      if (!b.is_ok()) {
        fprintf(stderr, "rank %d: %s\n", r, b.to_string().c_str());
        code = 4;
      }
      _exit(code);
    }
    children.push_back(pid);
  }
  auto all = (*server)->all_gather("pid", bytes(std::to_string(getpid())));
  ASSERT_OK(all);
  for (int r = 1; r < kWorld; ++r) {
    EXPECT_EQ(text((*all)[r]), std::to_string(children[r - 1])) << "rank " << r;
  }
  EXPECT_OK((*server)->barrier("done"));
  const auto deadline = Clock::now() + milliseconds(10000);
  for (const pid_t pid : children) {
    int wstatus = 0;
    pid_t done = 0;
    while ((done = waitpid(pid, &wstatus, WNOHANG)) == 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    if (done == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      ADD_FAILURE() << "child " << pid << " hung";
      continue;
    }
    EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child status " << wstatus;
  }
}

TEST(CommBootstrapTest, SizeLimits) {
  auto server = Rendezvous::serve(make_options(0, 2, 0));
  ASSERT_OK(server);
  auto client = Rendezvous::connect(make_options(1, 2, (*server)->port()));
  ASSERT_OK(client);
  Rendezvous& r = **server;

  std::vector<std::byte> too_big(kMaxValueBytes + 1);
  Status s = r.set("big", too_big);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find(std::to_string(kMaxValueBytes + 1)), std::string::npos);
  EXPECT_NE(s.message().find("'big'"), std::string::npos);

  s = r.set(std::string(kMaxKeyBytes + 1, 'k'), "v");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find(std::to_string(kMaxKeyBytes + 1)), std::string::npos);
  EXPECT_EQ(r.set("", "v").code(), StatusCode::kInvalidArgument);

  // The largest value and key round-trip through another client; so does an empty value.
  std::vector<std::byte> largest(kMaxValueBytes);
  for (size_t i = 0; i < largest.size(); ++i) largest[i] = static_cast<std::byte>(i * 7 + i / 253);
  const std::string long_key(kMaxKeyBytes, 'k');
  EXPECT_OK(r.set(long_key, largest));
  EXPECT_OK(r.set("empty", std::span<const std::byte>()));
  auto v = (*client)->get(long_key);
  ASSERT_OK(v);
  EXPECT_TRUE(*v == largest);
  auto e = (*client)->get("empty");
  ASSERT_OK(e);
  EXPECT_TRUE(e->empty());
  // The connection is still in step after the rejections.
  EXPECT_OK(r.set("after", "ok"));
  EXPECT_EQ(text(*(*client)->get("after")), "ok");
}

TEST(CommBootstrapTest, OneObjectSharedByThreads) {
  auto server = Rendezvous::serve(make_options(0, 1, 0));
  ASSERT_OK(server);
  Rendezvous& r = **server;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string key = fmt::format("t{}/{}", t, i);
        EXPECT_OK(r.set(key, key));
        auto v = r.get(key);
        ASSERT_OK(v);
        EXPECT_EQ(text(*v), key);
      }
    });
  }
  for (auto& t : threads) t.join();
}

TEST(CommBootstrapTest, InvalidOptions) {
  EXPECT_EQ(Rendezvous::serve(make_options(1, 2, 0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Rendezvous::connect(make_options(2, 2, 1234)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Rendezvous::connect(make_options(1, 2, 0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Rendezvous::connect(make_options(0, 0, 1234)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Rendezvous::connect(make_options(0, 1, 70000)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Rendezvous::connect(make_options(0, 1, 1234, milliseconds(0))).status().code(),
            StatusCode::kInvalidArgument);
  // A port in use.
  auto first = Rendezvous::serve(make_options(0, 1, 0));
  ASSERT_OK(first);
  auto second = Rendezvous::serve(make_options(0, 1, (*first)->port()));
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << describe(second);
}

TEST(CommBootstrapTest, HostNames) {
  // "localhost" goes through getaddrinfo; it may resolve to ::1 first, then 127.0.0.1.
  BootstrapOptions o = make_options(0, 2, 0);
  o.host = "localhost";
  auto server = Rendezvous::serve(o);
  ASSERT_OK(server);
  o.rank = 1;
  o.port = (*server)->port();
  auto client = Rendezvous::connect(o);
  ASSERT_OK(client);
  EXPECT_OK((*server)->set("k", "v"));
  EXPECT_EQ(text(*(*client)->get("k")), "v");
}

TEST(CommBootstrapTest, NoLeakedDescriptorsOrThreads) {
  const size_t fds_before = count_dir("/proc/self/fd");
  const size_t threads_before = count_dir("/proc/self/task");
  {
    auto server = Rendezvous::serve(make_options(0, 3, 0, milliseconds(100)));
    ASSERT_OK(server);
    std::vector<std::thread> threads;
    for (int r = 1; r < 3; ++r) {
      threads.emplace_back([r, port = (*server)->port()] {
        auto client = Rendezvous::connect(make_options(r, 3, port, milliseconds(2000)));
        ASSERT_OK(client);
        exchange(**client);
      });
    }
    // Rank 0 uses a longer timeout than it served with: a fresh connection for that.
    auto self = Rendezvous::connect(make_options(0, 3, (*server)->port(), milliseconds(2000)));
    ASSERT_OK(self);
    exchange(**self);
    for (auto& t : threads) t.join();
    EXPECT_FALSE((*server)->get("missing").is_ok());  // leaves a parked waiter
    const int garbage = raw_connect((*server)->port());
    close(garbage);
  }
  // A joined thread can linger in /proc for a moment.
  const auto deadline = Clock::now() + milliseconds(1000);
  while (count_dir("/proc/self/task") != threads_before && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(count_dir("/proc/self/fd"), fds_before);
  EXPECT_EQ(count_dir("/proc/self/task"), threads_before);
}

// Sets or unsets the launcher variables for one test and restores them afterwards.
class LauncherEnv {
 public:
  LauncherEnv() {
    for (const char* name : kNames) {
      const char* v = getenv(name);
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
    }
  }
  ~LauncherEnv() {
    for (size_t i = 0; i < kNames.size(); ++i) put(kNames[i], saved_[i]);
  }
  static void put(const char* name, const std::optional<std::string>& v) {
    if (v) {
      setenv(name, v->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  static void set_all(const char* addr, const char* port, const char* rank, const char* world) {
    setenv("MASTER_ADDR", addr, 1);
    setenv("MASTER_PORT", port, 1);
    setenv("RANK", rank, 1);
    setenv("WORLD_SIZE", world, 1);
  }

 private:
  static constexpr std::array<const char*, 4> kNames = {"MASTER_ADDR", "MASTER_PORT", "RANK",
                                                        "WORLD_SIZE"};
  std::vector<std::optional<std::string>> saved_;
};

void expect_env_error(StatusCode code, std::initializer_list<const char*> mentions) {
  auto o = bootstrap_options_from_env();
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.status().code(), code) << describe(o);
  for (const char* m : mentions) {
    EXPECT_NE(o.status().message().find(m), std::string::npos) << describe(o) << " lacks " << m;
  }
}

TEST(CommBootstrapTest, OptionsFromEnv) {
  LauncherEnv guard;
  LauncherEnv::set_all("10.1.2.3", "29500", "3", "8");
  auto o = bootstrap_options_from_env();
  ASSERT_OK(o);
  EXPECT_EQ(o->host, "10.1.2.3");
  EXPECT_EQ(o->port, 29500);
  EXPECT_EQ(o->rank, 3);
  EXPECT_EQ(o->world_size, 8);
  EXPECT_EQ(o->timeout, BootstrapOptions().timeout);

  for (const char* name : {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"}) {
    SCOPED_TRACE(name);
    LauncherEnv::set_all("10.1.2.3", "29500", "3", "8");
    unsetenv(name);
    expect_env_error(StatusCode::kNotFound, {name});
  }
  struct Case {
    const char* port;
    const char* rank;
    const char* world;
    std::vector<const char*> mentions;
  };
  const std::vector<Case> bad = {
      {"29500", "abc", "8", {"RANK", "abc"}},
      {"29500", "-1", "8", {"RANK", "-1"}},
      {"29500", "3x", "8", {"RANK", "3x"}},
      {"29500", "", "8", {"RANK"}},
      {"29500", " 3", "8", {"RANK"}},
      {"70000", "3", "8", {"MASTER_PORT", "70000"}},
      {"0", "3", "8", {"MASTER_PORT"}},
      {"http", "3", "8", {"MASTER_PORT", "http"}},
      {"29500", "3", "0", {"WORLD_SIZE", "0"}},
      {"29500", "8", "8", {"RANK", "WORLD_SIZE"}},
      {"29500", "3", "99999999999", {"WORLD_SIZE", "99999999999"}},
  };
  for (const Case& c : bad) {
    SCOPED_TRACE(
        fmt::format("MASTER_PORT='{}' RANK='{}' WORLD_SIZE='{}'", c.port, c.rank, c.world));
    LauncherEnv::set_all("10.1.2.3", c.port, c.rank, c.world);
    auto r = bootstrap_options_from_env();
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << describe(r);
    for (const char* m : c.mentions) {
      EXPECT_NE(r.status().message().find(m), std::string::npos) << describe(r) << " lacks " << m;
    }
  }
  LauncherEnv::set_all("", "29500", "3", "8");
  expect_env_error(StatusCode::kInvalidArgument, {"MASTER_ADDR"});

  // End to end: a worker configured by its launcher joins a served rendezvous.
  auto server = Rendezvous::serve(make_options(0, 2, 0));
  ASSERT_OK(server);
  LauncherEnv::set_all("127.0.0.1", std::to_string((*server)->port()).c_str(), "1", "2");
  auto env_options = bootstrap_options_from_env();
  ASSERT_OK(env_options);
  auto client = Rendezvous::connect(*env_options);
  ASSERT_OK(client);
  EXPECT_OK((*client)->set("from-env", "yes"));
  EXPECT_EQ(text(*(*server)->get("from-env")), "yes");
}

TEST(CommBootstrapTest, SupervisorServesWhereTheLauncherSays) {
  LauncherEnv guard;
  for (const char* name : {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"}) unsetenv(name);
  // Neither set: loopback, an ephemeral port, rank 0 of the supervisor's own world.
  auto local = supervisor_bootstrap_options(5);
  ASSERT_OK(local);
  EXPECT_EQ(local->host, "127.0.0.1");
  EXPECT_EQ(local->port, 0);
  EXPECT_EQ(local->rank, 0);
  EXPECT_EQ(local->world_size, 5);
  // Both set: there (RANK and WORLD_SIZE, a launcher's own numbering, are not read).
  LauncherEnv::set_all("0.0.0.0", "29511", "7", "9");
  auto there = supervisor_bootstrap_options(3);
  ASSERT_OK(there);
  EXPECT_EQ(there->host, "0.0.0.0");
  EXPECT_EQ(there->port, 29511);
  EXPECT_EQ(there->rank, 0);
  EXPECT_EQ(there->world_size, 3);
  EXPECT_EQ(local_connect_host("0.0.0.0"), "127.0.0.1");
  EXPECT_EQ(local_connect_host("::"), "127.0.0.1");
  EXPECT_EQ(local_connect_host("10.0.0.2"), "10.0.0.2");
  // One without the other, or a bad port: errors naming the variable.
  unsetenv("MASTER_PORT");
  auto half = supervisor_bootstrap_options(3);
  ASSERT_FALSE(half.is_ok());
  EXPECT_NE(half.status().message().find("MASTER_PORT"), std::string::npos) << describe(half);
  setenv("MASTER_PORT", "port", 1);
  auto bad = supervisor_bootstrap_options(3);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("MASTER_PORT='port'"), std::string::npos) << describe(bad);
  // Served there, reached at its local address.
  LauncherEnv::set_all("0.0.0.0", "0", "0", "1");
  setenv("MASTER_PORT", "1", 1);
  auto options = supervisor_bootstrap_options(2);
  ASSERT_OK(options);
  options->port = 0;  // any free port for the test; the host is the launcher's wildcard
  auto server = Rendezvous::serve(*options);
  ASSERT_OK(server);
  BootstrapOptions worker = make_options(1, 2, (*server)->port());
  worker.host = local_connect_host(options->host);
  auto client = Rendezvous::connect(worker);
  ASSERT_OK(client);
  EXPECT_OK((*client)->set("k", "v"));
  EXPECT_EQ(text(*(*server)->get("k")), "v");
}

}  // namespace
}  // namespace msi::comm
