// An LD_PRELOAD shim for the power-loss model of the crash suite
// (crash_power_loss.cpp, docs/journal-format.md "Durability").
//
// It wraps fsync(2) and fdatasync(2). When BH_SYNC_LOG names a directory,
// every sync that succeeds is recorded there:
//  - a regular file: a copy of its content as it was when the sync started
//    ("F" line): at least these bytes are durable from then on, since
//    fdatasync makes every byte written before it durable;
//  - a directory: its listing (name, type, inode, birth time) as it was when
//    the sync started ("D" line): these names are durable from then on.
// A file is known by (inode, birth time), so a reused inode number is another
// file. Lines are appended to BH_SYNC_LOG/events with one write(2) each
// (O_APPEND), so the writer processes of one run share the log; the copy is
// written before the sync and its line only after the sync returned 0, so a
// process killed in between leaves nothing that claims durability.
//
// Kill switches (SIGKILL of the calling process before the sync happens: a
// crash between a write and its fdatasync):
//   BH_SYNC_KILL_AT=N     at the N-th sync call of this process (files and
//                         directories, counted from 1)
//   BH_SYNC_KILL_SIZE=B   at the first sync of a regular file of at least B
//                         bytes
//
// syncfs(2), sync(2) and sync_file_range(2) are not modelled: a call aborts
// the process with a message, so the model never silently misses a sync.
// Without BH_SYNC_LOG the wrappers only pass the calls on.
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using sync_fn = int (*)(int);

std::atomic<unsigned long> g_calls{0};
std::atomic<unsigned long> g_names{0};

sync_fn real(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  if (!p) {
    std::fprintf(stderr, "sync_shim: dlsym(%s) failed\n", name);
    std::abort();
  }
  return reinterpret_cast<sync_fn>(p);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "sync_shim: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

struct identity {
  unsigned long long ino = 0;
  long long btime_sec = 0;
  unsigned btime_nsec = 0;
  bool dir = false;
  bool reg = false;
  unsigned long long size = 0;
};

bool identify(int dirfd, const char* path, int flags, identity& id) {
  struct statx sx {};
  if (::statx(dirfd, path, flags, STATX_TYPE | STATX_INO | STATX_BTIME | STATX_SIZE, &sx) != 0) return false;
  id.ino = sx.stx_ino;
  if (sx.stx_mask & STATX_BTIME) {
    id.btime_sec = sx.stx_btime.tv_sec;
    id.btime_nsec = sx.stx_btime.tv_nsec;
  }
  id.dir = S_ISDIR(sx.stx_mode);
  id.reg = S_ISREG(sx.stx_mode);
  id.size = sx.stx_size;
  return true;
}

// A new file name under the log directory: "<pid>-<n>.<suffix>".
void new_name(char* out, std::size_t n, const char* suffix) {
  std::snprintf(out, n, "%ld-%lu.%s", static_cast<long>(::getpid()), g_names.fetch_add(1) + 1, suffix);
}

int open_in_log(const char* log, const char* name) {
  char path[4096];
  std::snprintf(path, sizeof path, "%s/%s", log, name);
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) die(path);
  return fd;
}

// Copies the file behind fd (opened for reading through /proc, since the
// caller's descriptor may be write-only) into the log.
void copy_file(int fd, const char* log, const char* name) {
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  const int in = ::open(proc, O_RDONLY | O_CLOEXEC);
  if (in < 0) die(proc);
  const int out = open_in_log(log, name);
  char buf[65536];
  off_t off = 0;
  while (true) {
    const ssize_t r = ::pread(in, buf, sizeof buf, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("pread");
    }
    if (r == 0) break;
    write_all(out, buf, static_cast<std::size_t>(r));
    off += r;
  }
  ::close(in);
  ::close(out);
}

// Writes the listing of the directory behind fd into the log: one line per
// entry, "<f|d|o> <ino> <btime_sec> <btime_nsec> <name>".
void copy_listing(int fd, const char* log, const char* name) {
  const int d = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) die("openat .");
  DIR* dir = ::fdopendir(d);
  if (!dir) die("fdopendir");
  const int out = open_in_log(log, name);
  while (dirent* e = ::readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    identity id;
    if (!identify(::dirfd(dir), e->d_name, AT_SYMLINK_NOFOLLOW, id)) continue;  // gone meanwhile
    char line[600];
    const int n = std::snprintf(line, sizeof line, "%c %llu %lld %u %s\n", id.dir ? 'd' : id.reg ? 'f' : 'o', id.ino,
                                id.btime_sec, id.btime_nsec, e->d_name);
    write_all(out, line, static_cast<std::size_t>(n));
  }
  ::closedir(dir);
  ::close(out);
}

void append_event(const char* log, const char* line, std::size_t n) {
  char path[4096];
  std::snprintf(path, sizeof path, "%s/events", log);
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) die(path);
  write_all(fd, line, n);
  ::close(fd);
}

unsigned long long env_number(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : 0;
}

int hooked(int fd, sync_fn fn) {
  const char* log = std::getenv("BH_SYNC_LOG");
  if (!log || !*log) return fn(fd);
  const int saved = errno;
  identity id;
  if (!identify(fd, "", AT_EMPTY_PATH, id)) {
    errno = saved;
    return fn(fd);  // let the real call report the bad descriptor
  }
  const unsigned long call = g_calls.fetch_add(1) + 1;
  const auto kill_at = env_number("BH_SYNC_KILL_AT");
  const auto kill_size = env_number("BH_SYNC_KILL_SIZE");
  if ((kill_at && call == kill_at) || (kill_size && id.reg && id.size >= kill_size)) ::kill(::getpid(), SIGKILL);
  char name[128];
  if (id.reg) {
    new_name(name, sizeof name, "data");
    copy_file(fd, log, name);
  } else if (id.dir) {
    new_name(name, sizeof name, "list");
    copy_listing(fd, log, name);
  } else {
    errno = saved;
    return fn(fd);  // pipes, sockets: nothing to model
  }
  errno = saved;
  const int rc = fn(fd);
  if (rc != 0) return rc;
  const int e = errno;
  char line[300];
  const int n = std::snprintf(line, sizeof line, "%c %llu %lld %u %s\n", id.reg ? 'F' : 'D', id.ino, id.btime_sec,
                              id.btime_nsec, name);
  append_event(log, line, static_cast<std::size_t>(n));
  errno = e;
  return rc;
}

[[noreturn]] void unmodelled(const char* what) {
  std::fprintf(stderr, "sync_shim: %s is not modelled by the power-loss test; model it before using it\n", what);
  std::abort();
}

}  // namespace

extern "C" {

int fsync(int fd) {
  static const sync_fn fn = real("fsync");
  return hooked(fd, fn);
}

int fdatasync(int fd) {
  static const sync_fn fn = real("fdatasync");
  return hooked(fd, fn);
}

int syncfs(int fd) {
  if (std::getenv("BH_SYNC_LOG")) unmodelled("syncfs");
  static const sync_fn fn = real("syncfs");
  return fn(fd);
}

void sync() {
  if (std::getenv("BH_SYNC_LOG")) unmodelled("sync");
  static void* p = dlsym(RTLD_NEXT, "sync");
  if (p) reinterpret_cast<void (*)()>(p)();
}

int sync_file_range(int fd, off_t off, off_t n, unsigned flags) {
  if (std::getenv("BH_SYNC_LOG")) unmodelled("sync_file_range");
  using fn_t = int (*)(int, off_t, off_t, unsigned);
  static const auto fn = reinterpret_cast<fn_t>(dlsym(RTLD_NEXT, "sync_file_range"));
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  return fn(fd, off, n, flags);
}

}  // extern "C"
