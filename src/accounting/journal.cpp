// The journal; contract in bulkhead/accounting/journal.hpp, on-disk format in
// docs/journal-format.md.
#include "bulkhead/accounting/journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "bulkhead/backend/rooted_fs.hpp"
#include "journal_format.hpp"

namespace bulkhead::accounting {

namespace {

using namespace format;

constexpr std::string_view quarantine_dir = "quarantine";
// Every file the journal creates: its owner and group may read it, nobody
// else (usage is billing data).
constexpr mode_t file_mode = 0640;

std::string sys(int e) { return std::strerror(e); }

error os_error(int e, std::string what) { return error(errc_from_errno(e), std::move(what) + ": " + sys(e)); }

// Who holds a journal's lock, from the pid its holder wrote into LOCK:
// "process 1234 (bulkhead-agent)", "this process", or "another process"
// when the file says nothing usable.
std::string lock_holder(int lock_fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "another process";
  std::string_view t(buf, static_cast<std::size_t>(n));
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.remove_suffix(1);
  auto pid = bulkhead::detail::parse_u64(t, "pid");
  if (!pid || *pid == 0 || *pid > 4194304) return "another process";
  if (static_cast<pid_t>(*pid) == ::getpid()) return "this process (another journal object)";
  std::string who = "process " + std::to_string(*pid);
  char comm[64] = {};
  const int cfd = ::open(("/proc/" + std::to_string(*pid) + "/comm").c_str(), O_RDONLY | O_CLOEXEC);
  if (cfd >= 0) {
    const ssize_t m = ::read(cfd, comm, sizeof comm - 1);
    ::close(cfd);
    std::string c;
    for (ssize_t i = 0; i < m; ++i)
      if (comm[i] > 0x20 && comm[i] < 0x7f) c += comm[i];
    if (!c.empty()) who += " (" + c + ")";
  }
  return who;
}

class fd_guard {
 public:
  explicit fd_guard(int fd = -1) noexcept : fd_(fd) {}
  fd_guard(fd_guard&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  fd_guard& operator=(fd_guard&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~fd_guard() { reset(); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

result<void> write_all(int fd, const char* p, std::size_t n, std::uint64_t off, const std::string& what) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(os_error(errno, what));
    }
    if (w == 0) return fail(errc::io_error, what + ": write made no progress");
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
  return {};
}

result<void> sync_fd(int fd, const std::string& what) {
  while (::fdatasync(fd) != 0) {
    if (errno == EINTR) continue;
    return fail(os_error(errno, what + ": fdatasync"));
  }
  return {};
}

result<void> read_whole(int fd, std::string& buf, const std::string& what) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) return fail(os_error(errno, what + ": fstat"));
  buf.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < buf.size()) {
    const ssize_t r = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(os_error(errno, what + ": read"));
    }
    if (r == 0) break;  // shrank while reading (a concurrent writer's truncation)
    got += static_cast<std::size_t>(r);
  }
  buf.resize(got);
  return {};
}

struct listing {
  std::map<std::uint64_t, std::string> segments;     // first seq -> name
  std::map<std::uint64_t, std::string> checkpoints;  // seq -> name
  std::vector<std::string> temps;
  std::vector<std::string> quarantined;
};

result<listing> list_dir(const rooted_dir& d) {
  auto names = d.list();
  if (!names) return fail(std::move(names.error()));
  listing l;
  for (const auto& n : *names) {
    if (auto s = parse_name(n, "segment-", ".bhj")) l.segments.emplace(*s, n);
    else if (auto c = parse_name(n, "checkpoint-", ".bhc")) l.checkpoints.emplace(*c, n);
    else if (n.ends_with(".tmp") && (n.starts_with("segment-") || n.starts_with("checkpoint-"))) l.temps.push_back(n);
  }
  if (auto q = d.is_directory(quarantine_dir); q && *q) {
    if (auto qn = d.list(quarantine_dir))
      for (const auto& n : *qn) l.quarantined.push_back(std::string(quarantine_dir) + "/" + n);
  }
  return l;
}

// What recovery found and what a writer continues from.
struct recovered {
  rollup state;
  recovery_report report;
  std::uint64_t last_seq = 0;
  std::vector<std::pair<std::uint64_t, std::string>> live_segments;  // kept, in order
  std::uint64_t tail_size = 0;  // valid bytes of the last live segment
  std::vector<std::string> covered;  // segments wholly covered by the checkpoint (writer deletes)
  std::vector<std::string> old_checkpoints;
  std::optional<std::string> checkpoint;  // the checkpoint loaded
};

struct recovery_ctx {
  const rooted_dir& d;
  int dfd;  // the directory (writer only; -1 read-only)
  bool writable;
  std::string path;
};

result<std::string> move_to_quarantine_name(const recovery_ctx& c, const std::string& base) {
  if (auto r = c.d.make_dir(quarantine_dir, 0750); !r && r.error().code() != errc::already_exists) return fail(r.error());
  for (int i = 0; i < 1000; ++i) {
    std::string n = std::string(quarantine_dir) + "/" + base + (i ? "." + std::to_string(i) : "");
    auto e = c.d.exists(n);
    if (!e) return fail(e.error());
    if (!*e) return n;
  }
  return fail(errc::already_exists, "quarantine/" + base + ": too many files of that name");
}

result<void> fsync_dir(const rooted_dir& d, std::string_view rel, const std::string& what) {
  auto fd = d.open_fd(rel, O_RDONLY | O_DIRECTORY);
  if (!fd) return fail(fd.error());
  fd_guard g(*fd);
  if (::fsync(g.get()) != 0) return fail(os_error(errno, what + ": fsync of directory"));
  return {};
}

// A power cut leaves what was written but never synced as zeros: whole
// blocks the file system allocated but never wrote, or a file size already
// raised over data that never reached the disk (ext4, xfs; ANCHORS.md
// "Durability after a crash"). So in the last segment the bytes from the bad
// record at `off` are a torn tail when they are only zeros, or the first part
// of that record followed only by zeros to the end of the file, with the zeros
// starting inside the record and at least `min_torn_zeros` long. A whole
// record never ends in more than 3 zero bytes (a varint of 0 is one zero byte;
// a record ends with at most three such fields), so a complete last record
// with a flipped bit stays corruption. Called only for a record whose header
// is bad or whose CRC does not match.
constexpr std::size_t min_torn_zeros = 4;

bool zero_tail(const std::string& buf, std::size_t off) {
  std::size_t z = buf.size();  // where the zeros that run to the end begin
  while (z > off && buf[z - 1] == '\0') --z;
  if (z == off) return true;
  if (buf.size() - off < record_header_size) return true;  // cut inside the header: torn anyway
  const std::uint32_t lt = codec::get_u32(buf.data() + off + 4);
  const std::uint32_t len = lt & 0xFFFFFFu;
  const auto type = static_cast<record_type>(lt >> 24);
  if (len > max_payload || type < rec_series || type > rec_gap)
    return z < off + record_header_size;  // the header itself ends in the zeros
  return z < off + record_header_size + len && buf.size() - z >= min_torn_zeros;
}

// Moves bytes [off, end) of segment `name` (content in buf) and every segment
// in `later` to quarantine/, truncates `name` at off. Returns what was done.
result<std::string> quarantine(const recovery_ctx& c, const std::string& name, const std::string& buf,
                               std::uint64_t off, const std::vector<std::string>& later) {
  std::string done;
  if (off < buf.size()) {
    auto qn = move_to_quarantine_name(c, name + ".from-" + std::to_string(off));
    if (!qn) return fail(qn.error());
    auto qfd = c.d.open_fd(*qn, O_WRONLY | O_CREAT | O_EXCL, file_mode);
    if (!qfd) return fail(qfd.error());
    fd_guard g(*qfd);
    if (auto w = write_all(g.get(), buf.data() + off, buf.size() - off, 0, *qn); !w) return fail(w.error());
    if (auto s = sync_fd(g.get(), *qn); !s) return fail(s.error());
    auto sfd = c.d.open_fd(name, O_WRONLY);
    if (!sfd) return fail(sfd.error());
    fd_guard sg(*sfd);
    if (::ftruncate(sg.get(), static_cast<off_t>(off)) != 0) return fail(os_error(errno, name + ": truncate"));
    if (auto s = sync_fd(sg.get(), name); !s) return fail(s.error());
    done = "bytes " + std::to_string(off) + ".." + std::to_string(buf.size()) + " moved to '" + *qn + "'";
  }
  for (const auto& l : later) {
    auto qn = move_to_quarantine_name(c, l);
    if (!qn) return fail(qn.error());
    if (::renameat(c.dfd, l.c_str(), c.dfd, qn->c_str()) != 0) return fail(os_error(errno, "moving " + l + " to " + *qn));
    done += (done.empty() ? "" : "; ") + ("later segment '" + l + "' moved to '" + *qn + "'");
  }
  if (auto s = fsync_dir(c.d, quarantine_dir, "quarantine"); !s) return fail(s.error());
  if (::fsync(c.dfd) != 0) return fail(os_error(errno, c.path + ": fsync of directory"));
  return done;
}

result<recovered> recover(const recovery_ctx& c) {
  auto l = list_dir(c.d);
  if (!l) return fail(std::move(l.error()));
  recovered out;
  const auto where = [&](const std::string& seg, std::uint64_t off) {
    return "journal " + bulkhead::detail::quote(c.path) + ": segment '" + seg + "' offset " + std::to_string(off);
  };

  // 1. The newest checkpoint.
  if (!l->checkpoints.empty()) {
    const auto& [seq, name] = *l->checkpoints.rbegin();
    auto fd = c.d.open_fd(name, O_RDONLY);
    if (!fd) return fail(std::move(fd.error()));
    fd_guard g(*fd);
    std::string buf;
    if (auto r = read_whole(g.get(), buf, name); !r) return fail(r.error());
    const auto bad = [&](const std::string& why) {
      return fail(errc::corrupt, "journal " + bulkhead::detail::quote(c.path) + ": checkpoint '" + name + "': " + why +
                                     "; move it aside to recover from the segments alone if they are all present");
    };
    if (buf.size() < checkpoint_header_size + 4) return bad("shorter than its header");
    if (std::memcmp(buf.data(), checkpoint_magic, 8) != 0) return bad("bad magic");
    if (codec::get_u32(buf.data() + 8) != version)
      return bad("version " + std::to_string(codec::get_u32(buf.data() + 8)) + " is not 1");
    const auto body_len = codec::get_u64(buf.data() + 24);
    if (body_len != buf.size() - checkpoint_header_size - 4) return bad("length does not match the file size");
    const auto stored = codec::get_u32(buf.data() + buf.size() - 4);
    if (stored != codec::crc32c(buf.data(), buf.size() - 4)) return bad("CRC mismatch");
    if (codec::get_u64(buf.data() + 16) != seq) return bad("sequence number does not match its name");
    auto st = rollup::parse(std::string_view(buf).substr(checkpoint_header_size, body_len));
    if (!st) return bad(st.error().describe());
    out.state = std::move(*st);
    out.report.checkpoint_seq = seq;
    out.last_seq = seq;
    out.checkpoint = name;
    for (const auto& [s, n] : l->checkpoints)
      if (s != seq) out.old_checkpoints.push_back(n);
  }
  out.report.quarantined = l->quarantined;

  // 2. Segments after it.
  std::vector<std::pair<std::uint64_t, std::string>> segs(l->segments.begin(), l->segments.end());
  std::size_t first = 0;
  // Only a checkpoint covers segments: without one every segment is read and
  // checked, even one named below sequence 1 (found by fuzzing: such a file
  // was skipped, so the open() after a quarantine failed on it again).
  while (!l->checkpoints.empty() && first + 1 < segs.size() && segs[first + 1].first <= out.report.checkpoint_seq + 1) {
    out.covered.push_back(segs[first].second);
    ++first;
  }
  std::string buf;
  for (std::size_t i = first; i < segs.size(); ++i) {
    const auto& [seg_first, name] = segs[i];
    const bool last = i + 1 == segs.size();
    std::vector<std::string> later;
    for (std::size_t j = i + 1; j < segs.size(); ++j) later.push_back(segs[j].second);
    auto fd = c.d.open_fd(name, O_RDONLY);
    if (!fd) return fail(std::move(fd.error()));
    {
      fd_guard g(*fd);
      if (auto r = read_whole(g.get(), buf, name); !r) return fail(r.error());
    }
    out.report.segments.push_back(name);
    out.report.bytes += buf.size();

    std::string why;
    std::uint64_t off = 0;
    bool torn = false;
    bool unreadable = false;  // the bad record's header or CRC is bad (a torn write looks so)
    // Header.
    if (buf.size() < segment_header_size) {
      why = "segment header cut short (" + std::to_string(buf.size()) + " of 32 bytes)";
      torn = last;
    } else if (std::memcmp(buf.data(), segment_magic, 8) != 0) {
      why = "bad segment magic";
    } else if (codec::get_u32(buf.data() + 28) != codec::crc32c(buf.data(), 28)) {
      why = "segment header CRC mismatch";
    } else if (codec::get_u32(buf.data() + 8) != version) {
      why = "segment version " + std::to_string(codec::get_u32(buf.data() + 8)) + " is not 1";
    } else if (codec::get_u64(buf.data() + 16) != seg_first) {
      why = "segment header names first sequence " + std::to_string(codec::get_u64(buf.data() + 16)) +
            " but the file name says " + std::to_string(seg_first);
    } else if (seg_first > out.last_seq + 1) {
      why = "segment starts at sequence " + std::to_string(seg_first) + " but records " +
            std::to_string(out.last_seq + 1) + ".." + std::to_string(seg_first - 1) + " are missing";
    } else {
      // Records.
      off = segment_header_size;
      std::uint64_t expect = seg_first;
      const char* const base = buf.data();
      const std::size_t size = buf.size();
      while (off < size) {
        const char* p = base + off;
        if (size - off < record_header_size) {
          why = "record header cut short";
          torn = true;
          break;
        }
        const std::uint32_t lt = codec::get_u32(p + 4);
        const std::uint32_t len = lt & 0xFFFFFFu;
        const auto type = static_cast<record_type>(lt >> 24);
        if (len > max_payload || type < rec_series || type > rec_gap) {
          why = "bad record header (type " + std::to_string(static_cast<int>(type)) + ", length " + std::to_string(len) + ")";
          unreadable = true;
          break;
        }
        if (size - off - record_header_size < len) {
          why = "record of " + std::to_string(len) + " bytes cut short";
          torn = true;
          break;
        }
        const auto stored = codec::get_u32(p);
        const auto computed = codec::crc32c(p + 4, 12 + len);
        if (stored != computed) {
          char b[80];
          std::snprintf(b, sizeof b, "record CRC mismatch (stored 0x%08x, computed 0x%08x)", stored, computed);
          why = b;
          unreadable = true;
          break;
        }
        const auto seq = codec::get_u64(p + 8);
        if (seq != expect) {
          why = "record sequence " + std::to_string(seq) + " where " + std::to_string(expect) + " was expected";
          break;
        }
        if (seq > out.last_seq) {
          auto bad = apply_record(out.state, type, p + record_header_size, len);
          if (!bad.empty()) {
            why = "record " + std::to_string(seq) + ": " + bad;
            break;
          }
          out.last_seq = seq;
          ++out.report.records;
        }
        ++expect;
        off += record_header_size + len;
      }
      if (!why.empty() && !torn && last) {
        // Unwritten blocks after a crash read as zeros: a torn tail too.
        torn = unreadable ? zero_tail(buf, off)
                          : std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(off), buf.end(),
                                        [](char ch) { return ch == 0; });
      }
    }
    if (why.empty()) {
      out.live_segments.emplace_back(seg_first, name);
      out.tail_size = buf.size();
      continue;
    }
    if (torn && last) {
      out.report.torn_segment = name;
      out.report.torn_bytes = buf.size() - off;
      if (off < segment_header_size) {
        // Not even a header: no record was ever in it. Keep its bytes.
        if (c.writable) {
          auto qn = move_to_quarantine_name(c, name);
          if (!qn) return fail(qn.error());
          if (::renameat(c.dfd, name.c_str(), c.dfd, qn->c_str()) != 0)
            return fail(os_error(errno, "moving " + name + " to " + *qn));
          if (::fsync(c.dfd) != 0) return fail(os_error(errno, c.path + ": fsync of directory"));
          out.report.quarantined.push_back(*qn);
        }
        break;
      }
      if (c.writable) {
        auto sfd = c.d.open_fd(name, O_WRONLY);
        if (!sfd) return fail(sfd.error());
        fd_guard sg(*sfd);
        if (::ftruncate(sg.get(), static_cast<off_t>(off)) != 0) return fail(os_error(errno, name + ": cutting the torn tail"));
        if (auto s = sync_fd(sg.get(), name); !s) return fail(s.error());
      }
      out.live_segments.emplace_back(seg_first, name);
      out.tail_size = off;
      break;
    }
    // Corruption: stop here.
    std::string msg = where(name, off) + ": " + why + "; recovery stopped after record " + std::to_string(out.last_seq);
    if (!c.writable) {
      out.report.corruption = error(errc::corrupt, msg);
      if (off >= segment_header_size) {
        out.live_segments.emplace_back(seg_first, name);
        out.tail_size = off;
      }
      break;
    }
    if (off < segment_header_size) {
      // A bad header: the whole file goes, as a later segment would.
      later.insert(later.begin(), name);
      off = buf.size();
    }
    auto q = quarantine(c, name, buf, off, later);
    if (!q) return fail(q.error().in(msg));
    msg += "; " + *q + "; opening again continues from record " + std::to_string(out.last_seq);
    return fail(errc::corrupt, msg);
  }
  out.report.last_seq = out.last_seq;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

struct journal::impl {
  std::string path;
  rooted_dir dir;
  fd_guard dfd;
  fd_guard lock;
  journal_options opt;
  recovery_report report;

  mutable std::mutex mu;
  std::condition_variable wake;     // to the committer
  std::condition_variable durable;  // to waiters
  std::condition_variable room;     // to appenders held back
  rollup state;
  std::string fill;
  std::uint64_t fill_records = 0;
  mono_clock::time_point fill_first{};
  std::uint64_t last_seq = 0, durable_seq = 0, flush_to = 0;
  bool writing = false, stop = false, paused = false;
  std::optional<error> failed;
  journal_stats stats;

  // Segment state: the committer's, and checkpoint()'s while it holds io.
  std::mutex io;
  std::mutex checkpointing;  // one checkpoint at a time
  fd_guard seg;
  std::string seg_name;
  std::uint64_t seg_off = 0;
  std::vector<std::pair<std::uint64_t, std::string>> segments;  // live, in order
  std::string writing_buf;
  std::thread committer;

  explicit impl(rooted_dir d) : dir(std::move(d)) {}

  // Creates segment-<first>.bhj (via a .tmp file, synced, renamed, directory
  // synced) and makes it the one written to.
  result<void> new_segment(std::uint64_t first) {
    const auto name = segment_name(first);
    const auto tmp = name + ".tmp";
    auto fd = dir.open_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC, file_mode);
    if (!fd) return fail(fd.error());
    fd_guard g(*fd);
    const auto h = segment_header(first);
    if (auto w = write_all(g.get(), h.data(), h.size(), 0, path + "/" + tmp); !w) return w;
    if (auto s = sync_fd(g.get(), path + "/" + tmp); !s) return s;
    if (::renameat(dfd.get(), tmp.c_str(), dfd.get(), name.c_str()) != 0)
      return fail(os_error(errno, path + ": renaming " + tmp + " to " + name));
    if (::fsync(dfd.get()) != 0) return fail(os_error(errno, path + ": fsync of directory"));
    seg = std::move(g);
    seg_name = name;
    seg_off = h.size();
    segments.emplace_back(first, name);
    return {};
  }

  // Writes one batch (records first_seq..last) and syncs it.
  result<void> write_batch(const std::string& b, std::uint64_t first_seq, std::uint64_t last) {
    if (seg.get() < 0 || seg_off >= opt.segment_bytes)
      if (auto r = new_segment(first_seq); !r)
        return fail(r.error().in("journal " + bulkhead::detail::quote(path) + ": starting a segment for records " +
                                 std::to_string(first_seq) + ".." + std::to_string(last)));
    const std::string what = "journal " + bulkhead::detail::quote(path) + ": segment '" + seg_name + "': writing " +
                             std::to_string(b.size()) + " bytes (records " + std::to_string(first_seq) + ".." +
                             std::to_string(last) + ") at offset " + std::to_string(seg_off);
    auto w = write_all(seg.get(), b.data(), b.size(), seg_off, what);
    if (w) w = sync_fd(seg.get(), what);
    if (!w) {
      // Best effort: leave no partial batch behind (recovery would cut it anyway).
      [[maybe_unused]] int rc = ::ftruncate(seg.get(), static_cast<off_t>(seg_off));
      return fail(w.error().in("records " + std::to_string(first_seq) + ".." + std::to_string(last) +
                               " are not durable and were not acknowledged; reopen the journal" +
                               (w.error().code() == errc::no_space ? " once space is free" : "")));
    }
    seg_off += b.size();
    return {};
  }

  void run() {
    std::unique_lock lk(mu);
    while (true) {
      if (fill_records == 0) {
        if (stop) break;
        wake.wait(lk);
        continue;
      }
      const bool due = fill_records >= opt.batch_records || flush_to > durable_seq || stop || paused;
      if (!due) {
        const auto deadline = fill_first + opt.max_delay;
        if (mono_clock::now() < deadline) {
          wake.wait_until(lk, deadline);
          continue;
        }
      }
      writing_buf.swap(fill);
      const std::uint64_t n = fill_records, last = last_seq;
      fill_records = 0;
      fill.clear();
      writing = true;
      room.notify_all();
      lk.unlock();
      result<void> r;
      {
        std::lock_guard io_lk(io);
        r = write_batch(writing_buf, last - n + 1, last);
      }
      const auto bytes = writing_buf.size();
      writing_buf.clear();
      lk.lock();
      writing = false;
      if (!r) {
        failed = r.error();
        durable.notify_all();
        room.notify_all();
        break;
      }
      durable_seq = last;
      ++stats.batches;
      stats.bytes += bytes;
      durable.notify_all();
      room.notify_all();
    }
  }

  // Caller holds mu. Fails when the journal failed; waits while a checkpoint
  // pauses appends or the batch being filled is full (until the committer
  // takes it), so no batch exceeds batch_records.
  result<void> admit(std::unique_lock<std::mutex>& lk) {
    room.wait(lk, [&] {
      return failed || stop || (!paused && fill_records < opt.batch_records);
    });
    if (failed) return fail(error(*failed).in("journal " + bulkhead::detail::quote(path) + " failed earlier; reopen it"));
    if (stop) return fail(errc::invalid_argument, "journal " + bulkhead::detail::quote(path) + " is closing");
    return {};
  }

  std::uint64_t next_record() {
    if (fill_records++ == 0) {
      fill_first = mono_clock::now();
      wake.notify_one();
    } else if (fill_records == opt.batch_records) {
      wake.notify_one();
    }
    ++stats.appended;
    return ++last_seq;
  }
};

journal::journal(std::unique_ptr<impl> p) noexcept : p_(std::move(p)) {}

journal::~journal() {
  if (!p_) return;
  {
    std::lock_guard lk(p_->mu);
    p_->stop = true;
  }
  p_->wake.notify_all();
  p_->room.notify_all();
  if (p_->committer.joinable()) p_->committer.join();
}

result<std::unique_ptr<journal>> journal::open(const std::string& dir, journal_options options) {
  if (options.batch_records == 0) return fail(errc::invalid_argument, "journal options: batch_records is 0");
  if (options.max_delay.count() < 0) return fail(errc::invalid_argument, "journal options: max_delay is negative");
  if (options.segment_bytes < journal_options::min_segment_bytes)
    return fail(errc::invalid_argument,
                "journal options: segment_bytes " + std::to_string(options.segment_bytes) + " is below the smallest, " +
                    std::to_string(journal_options::min_segment_bytes) +
                    " (a segment is closed once it reaches segment_bytes and may exceed it by one batch)");
  auto d = rooted_dir::open(dir);
  if (!d) return fail(std::move(d.error()).in("opening journal"));
  auto p = std::make_unique<impl>(std::move(*d));
  p->path = dir;
  p->opt = options;
  auto dfd = p->dir.open_fd("", O_RDONLY | O_DIRECTORY);
  if (!dfd) return fail(std::move(dfd.error()));
  p->dfd = fd_guard(*dfd);
  auto lfd = p->dir.open_fd("LOCK", O_RDWR | O_CREAT, file_mode);
  if (!lfd) return fail(std::move(lfd.error()).in("journal " + bulkhead::detail::quote(dir) + ": lock file"));
  p->lock = fd_guard(*lfd);
  if (::flock(p->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e == EWOULDBLOCK)
      return fail(errc::conflict, "journal " + bulkhead::detail::quote(dir) + " is open for writing by " +
                                      lock_holder(p->lock.get()) + " (it holds the lock on " +
                                      bulkhead::detail::quote_path(dir + "/LOCK") + ")");
    return fail(os_error(e, "journal " + bulkhead::detail::quote(dir) + ": locking"));
  }
  // Say who holds it, for the next writer's error message.
  {
    const std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(p->lock.get(), 0) == 0) (void)!::pwrite(p->lock.get(), me.data(), me.size(), 0);
  }
  // Leftovers of a crash while creating a segment or checkpoint.
  if (auto l = list_dir(p->dir); l) {
    for (const auto& t : l->temps) ::unlinkat(p->dfd.get(), t.c_str(), 0);
  }
  recovery_ctx ctx{p->dir, p->dfd.get(), true, dir};
  auto rec = recover(ctx);
  if (!rec) return fail(std::move(rec.error()));
  // Retire what a checkpoint covered (a crash between the two steps).
  for (const auto& n : rec->covered) ::unlinkat(p->dfd.get(), n.c_str(), 0);
  for (const auto& n : rec->old_checkpoints) ::unlinkat(p->dfd.get(), n.c_str(), 0);
  // What recovery kept may be bytes a crashed writer wrote but never synced:
  // they sit in the page cache, readable, and a power cut would still drop
  // them. Sync every file kept, then the directory (names created, renamed
  // or removed by the crashed writer or by this open), before durable_seq()
  // says so and before anything built on them (a resubmitted duplicate's
  // wait(), a record appended after them) is acknowledged: as databases do
  // after crash recovery (ANCHORS.md "Durability after a crash").
  {
    std::vector<std::string> keep;
    if (rec->checkpoint) keep.push_back(*rec->checkpoint);
    for (const auto& [first, name] : rec->live_segments) keep.push_back(name);
    for (const auto& name : keep) {
      auto fd = p->dir.open_fd(name, O_RDONLY);
      if (!fd) return fail(std::move(fd.error()).in("journal " + bulkhead::detail::quote(dir) + ": syncing what recovery kept"));
      fd_guard g(*fd);
      if (auto s = sync_fd(g.get(), "journal " + bulkhead::detail::quote(dir) + ": " + name); !s)
        return fail(std::move(s.error()).in("syncing what recovery kept"));
    }
    if (::fsync(p->dfd.get()) != 0)
      return fail(os_error(errno, "journal " + bulkhead::detail::quote(dir) + ": fsync of directory after recovery"));
  }
  p->state = std::move(rec->state);
  p->report = std::move(rec->report);
  p->last_seq = p->durable_seq = rec->last_seq;
  p->segments = std::move(rec->live_segments);
  if (!p->segments.empty()) {
    const auto& name = p->segments.back().second;
    auto sfd = p->dir.open_fd(name, O_WRONLY);
    if (!sfd) return fail(std::move(sfd.error()));
    p->seg = fd_guard(*sfd);
    p->seg_name = name;
    p->seg_off = rec->tail_size;
  }
  auto* raw = p.get();
  p->committer = std::thread([raw] { raw->run(); });
  return std::unique_ptr<journal>(new journal(std::move(p)));
}

result<journal_view> journal::open_read_only(const std::string& dir) {
  auto d = rooted_dir::open(dir);
  if (!d) return fail(std::move(d.error()).in("opening journal read-only"));
  recovery_ctx ctx{*d, -1, false, dir};
  // A writer may retire segments while we list them: try again then.
  for (int attempt = 0;; ++attempt) {
    auto rec = recover(ctx);
    if (rec) return journal_view{std::move(rec->state), std::move(rec->report)};
    if (rec.error().code() != errc::not_found || attempt == 2) return fail(std::move(rec.error()));
  }
}

result<std::uint32_t> journal::define(const series_key& key, const instance_labels& labels) {
  std::unique_lock lk(p_->mu);
  if (auto f = p_->state.find(key)) return *f;
  if (auto a = p_->admit(lk); !a) return fail(std::move(a.error()));
  auto id = p_->state.define(key, labels);
  if (!id) return fail(std::move(id.error()));
  encode_series(p_->fill, p_->next_record(), *id, key, labels);
  return *id;
}

result<append_result> journal::append(std::uint32_t series, const delta& d) {
  std::unique_lock lk(p_->mu);
  if (auto a = p_->admit(lk); !a) return fail(std::move(a.error()));
  auto c = p_->state.check(series, d);
  if (!c) return fail(std::move(c.error()));
  if (*c == delta_check::duplicate) {
    ++p_->stats.duplicates;
    return append_result{true, ticket{p_->last_seq}};
  }
  const auto seq = p_->next_record();
  encode_delta(p_->fill, seq, p_->state.series()[series], d);
  p_->state.apply(series, d);
  return append_result{false, ticket{seq}};
}

result<append_result> journal::append_gap(const gap_record& g) {
  if (auto v = format::validate(g); !v) return fail(std::move(v.error()));
  std::unique_lock lk(p_->mu);
  if (auto a = p_->admit(lk); !a) return fail(std::move(a.error()));
  if (p_->state.has_gap(g)) {
    ++p_->stats.duplicates;
    return append_result{true, ticket{p_->last_seq}};
  }
  const auto seq = p_->next_record();
  encode_gap(p_->fill, seq, g);
  p_->state.apply_gap(g);
  return append_result{false, ticket{seq}};
}

result<void> journal::wait(ticket t) {
  std::unique_lock lk(p_->mu);
  if (t.seq > p_->last_seq)
    return fail(errc::invalid_argument, "journal ticket " + std::to_string(t.seq) + " was never issued (last is " +
                                            std::to_string(p_->last_seq) + ")");
  p_->durable.wait(lk, [&] { return p_->durable_seq >= t.seq || p_->failed; });
  if (p_->durable_seq >= t.seq) return {};
  return fail(error(*p_->failed).in("record " + std::to_string(t.seq) + " was not made durable"));
}

result<void> journal::flush() {
  std::unique_lock lk(p_->mu);
  const auto target = p_->last_seq;
  if (p_->durable_seq >= target) return {};
  p_->flush_to = std::max(p_->flush_to, target);
  p_->wake.notify_one();
  p_->durable.wait(lk, [&] { return p_->durable_seq >= target || p_->failed; });
  if (p_->durable_seq >= target) return {};
  return fail(error(*p_->failed).in("flush"));
}

std::uint64_t journal::durable_seq() const {
  std::lock_guard lk(p_->mu);
  return p_->durable_seq;
}
std::uint64_t journal::last_seq() const {
  std::lock_guard lk(p_->mu);
  return p_->last_seq;
}

result<void> journal::checkpoint() {
  std::lock_guard one(p_->checkpointing);
  rollup snap;
  std::uint64_t seq = 0;
  std::vector<std::pair<std::uint64_t, std::string>> retire;
  {
    std::unique_lock lk(p_->mu);
    if (auto a = p_->admit(lk); !a) return fail(std::move(a.error()));
    p_->paused = true;
    p_->flush_to = p_->last_seq;
    p_->wake.notify_one();
    p_->durable.wait(lk, [&] { return p_->durable_seq >= p_->last_seq || p_->failed; });
    const auto unpause = [&] {
      p_->paused = false;
      p_->room.notify_all();
    };
    if (p_->failed) {
      unpause();
      return fail(error(*p_->failed).in("checkpoint"));
    }
    seq = p_->last_seq;
    snap = p_->state;
    // Start a new segment so the checkpoint covers whole segments.
    std::lock_guard io_lk(p_->io);
    if (p_->seg.get() >= 0 && p_->seg_off > segment_header_size) {
      if (auto r = p_->new_segment(seq + 1); !r) {
        unpause();
        return fail(r.error().in("checkpoint"));
      }
    }
    for (const auto& s : p_->segments)
      if (s.first <= seq) retire.push_back(s);
    std::erase_if(p_->segments, [&](const auto& s) { return s.first <= seq; });
    unpause();
  }
  // Write the checkpoint beside the live segments.
  std::string buf(checkpoint_header_size, '\0');
  snap.serialize(buf);
  const auto body_len = buf.size() - checkpoint_header_size;
  std::memcpy(buf.data(), checkpoint_magic, 8);
  codec::put_u32(buf.data() + 8, version);
  codec::put_u32(buf.data() + 12, checkpoint_header_size);
  codec::put_u64(buf.data() + 16, seq);
  codec::put_u64(buf.data() + 24, body_len);
  char crc[4];
  codec::put_u32(crc, codec::crc32c(buf.data(), buf.size()));
  buf.append(crc, 4);
  const auto name = checkpoint_name(seq), tmp = name + ".tmp";
  const auto in = [&](error e) { return fail(std::move(e).in("journal " + bulkhead::detail::quote(p_->path) + ": checkpoint " + name)); };
  {
    auto fd = p_->dir.open_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC, file_mode);
    if (!fd) return in(fd.error());
    fd_guard g(*fd);
    if (auto w = write_all(g.get(), buf.data(), buf.size(), 0, tmp); !w) return in(w.error());
    if (auto s = sync_fd(g.get(), tmp); !s) return in(s.error());
  }
  if (::renameat(p_->dfd.get(), tmp.c_str(), p_->dfd.get(), name.c_str()) != 0) return in(os_error(errno, "rename"));
  if (::fsync(p_->dfd.get()) != 0) return in(os_error(errno, "fsync of directory"));
  // Now the segments it covers and older checkpoints can go.
  std::uint64_t retired = 0;
  for (const auto& [first, n] : retire)
    if (::unlinkat(p_->dfd.get(), n.c_str(), 0) == 0) ++retired;
  if (auto l = list_dir(p_->dir))
    for (const auto& [s, n] : l->checkpoints)
      if (s < seq) ::unlinkat(p_->dfd.get(), n.c_str(), 0);
  ::fsync(p_->dfd.get());
  std::lock_guard lk(p_->mu);
  p_->stats.segments_retired += retired;
  ++p_->stats.checkpoints;
  return {};
}

rollup journal::snapshot() const {
  std::lock_guard lk(p_->mu);
  return p_->state;
}
void journal::with_totals(const std::function<void(const rollup&)>& f) const {
  std::lock_guard lk(p_->mu);
  f(p_->state);
}
std::vector<series_info> journal::series() const {
  std::lock_guard lk(p_->mu);
  return p_->state.series();
}
const recovery_report& journal::recovery() const noexcept { return p_->report; }
journal_stats journal::stats() const {
  std::lock_guard lk(p_->mu);
  return p_->stats;
}
std::optional<error> journal::failure() const {
  std::lock_guard lk(p_->mu);
  return p_->failed;
}
const std::string& journal::dir() const noexcept { return p_->path; }

}  // namespace bulkhead::accounting
