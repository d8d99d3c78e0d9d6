// The sandbox's root (internal): planned in aha before fork (the host paths the interpreter
// needs, ro_paths, the program's files, argv and environment) and built by the middle process
// inside its new mount namespace: a staging tmpfs holding read-only binds, the work tmpfs, then
// the whole root remounted read-only.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "sandbox_internal.h"

namespace aha::rewards::sandbox_detail {
namespace {

constexpr int kWorkInodes = 4096;  // files the work dir may hold

std::string resolve(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    std::string p = std::string(dir) + "/" + prog;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return prog;
}

// Makes a bind read-only, keeping the flags a user namespace may not drop (nosuid, nodev,
// noexec, atime) and adding nosuid (and nodev off /dev).
bool remount_read_only(const char* target, bool device) {
  struct statfs sf;
  if (statfs(target, &sf) != 0) return false;
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID;
  if (!device || (sf.f_flags & ST_NODEV)) flags |= MS_NODEV;
  if (sf.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sf.f_flags & ST_NOATIME) flags |= MS_NOATIME;
  if (sf.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sf.f_flags & ST_RELATIME) flags |= MS_RELATIME;
  return mount(nullptr, target, nullptr, flags, nullptr) == 0;
}

bool make_entry(const RootEntry& e) {
  const char* t = e.staged.c_str();
  switch (e.kind) {
    case RootEntry::Kind::kDir:
      return mkdir(t, 0755) == 0 || errno == EEXIST;
    case RootEntry::Kind::kSymlink:
      return symlink(e.source.c_str(), t) == 0;
    case RootEntry::Kind::kBindDir:
      if (mkdir(t, 0755) != 0 && errno != EEXIST) return false;
      return mount(e.source.c_str(), t, nullptr, MS_BIND | MS_REC, nullptr) == 0 &&
             remount_read_only(t, e.device);
    case RootEntry::Kind::kBindFile: {
      int fd = open(t, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      close(fd);
      return mount(e.source.c_str(), t, nullptr, MS_BIND, nullptr) == 0 &&
             remount_read_only(t, e.device);
    }
  }
  return false;
}


void add_entry(ChildPlan& p, RootEntry::Kind kind, const std::string& path,
               const std::string& source, bool device = false) {
  p.entries.push_back({kind, path, kStage + path, source, device});
}

// A host path as it should appear in the sandbox: a symlink stays a symlink (merged /usr)
// unless `follow` (its target may lie outside the sandbox: /etc/resolv.conf -> /run/...), a
// directory or file is bound read-only; absent paths are skipped.
void add_host_path(ChildPlan& p, const std::string& path, bool device = false,
                   bool follow = false) {
  struct stat st;
  if ((follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) != 0) return;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    std::string target = std::filesystem::read_symlink(path, ec).string();
    if (!ec) add_entry(p, RootEntry::Kind::kSymlink, path, target);
  } else if (S_ISDIR(st.st_mode)) {
    add_entry(p, RootEntry::Kind::kBindDir, path, path, device);
  } else {
    add_entry(p, RootEntry::Kind::kBindFile, path, path, device);
  }
}

bool visible(const ChildPlan& p, const std::string& path) {
  for (const auto& e : p.entries) {
    if (path == e.path || path.rfind(e.path + "/", 0) == 0) {
      return e.kind != RootEntry::Kind::kDir;
    }
  }
  return false;
}

// The root: the interpreter's directories, the few files of /etc the loader reads, /dev's
// harmless nodes, /tmp and /sandbox; then ro_paths. No /proc: its mount table would name the
// host's devices and paths (a bind keeps its source's name), and with it go /dev/fd and
// /dev/std* (links into /proc); the program reads its stdin on fd 0.
std::string plan_root(ChildPlan& p, const SandboxLimits& l) {
  for (const char* d : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    add_host_path(p, d);
  }
  add_entry(p, RootEntry::Kind::kDir, "/etc", "");
  for (const char* f : {"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                        "/etc/localtime", "/etc/alternatives"}) {
    add_host_path(p, f);
  }
  if (l.allow_network) {  // name resolution and TLS for programs that may use the network
    for (const char* f : {"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf",
                          "/etc/gai.conf", "/etc/ssl"}) {
      add_host_path(p, f, false, true);
    }
  }
  add_entry(p, RootEntry::Kind::kDir, "/dev", "");
  for (const char* d : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}) {
    add_host_path(p, d, true);
  }
  for (const char* d : {"/dev/shm", "/tmp", kWork}) {
    add_entry(p, RootEntry::Kind::kDir, d, "");
  }
  for (const std::string& raw : l.ro_paths) {
    std::string path = std::filesystem::path(raw).lexically_normal().string();
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path.empty() || path[0] != '/' || path == "/" || path == "/tmp" ||
        path.rfind("/tmp/", 0) == 0 || path == kWork || path == "/proc" ||
        path.rfind("/proc/", 0) == 0) {
      return "ro_paths: " + raw + " must be absolute, not /, /proc or under /tmp";
    }
    if (visible(p, path)) continue;
    for (size_t slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      add_entry(p, RootEntry::Kind::kDir, path.substr(0, slash), "");
    }
    add_host_path(p, path);
  }
  p.staged_work = std::string(kStage) + kWork;
  p.staged_tmp = std::string(kStage) + "/tmp";
  p.staged_shm = std::string(kStage) + "/dev/shm";
  p.work_opts = "size=" + std::to_string(l.disk_mb) + "m,nr_inodes=" +
                std::to_string(kWorkInodes) + ",mode=0700";
  return "";
}

}  // namespace

// In the middle, inside the new mount namespace: the root tmpfs with its binds, the work tmpfs
// (at its own path and at /tmp and /dev/shm) holding the files, then the root made read-only.
void build_root(const ChildPlan& p, uid_t uid) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(kPrivate);
  if (mount("tmpfs", kStage, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024,mode=0755"))
    fail(kStaging);
  for (size_t i = 0; i < p.entries.size(); ++i) {
    if (!make_entry(p.entries[i])) fail(kEntry, static_cast<int>(i));
  }
  if (mount("tmpfs", p.staged_work.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.work_opts.c_str()))
    fail(kWorkMount);
  for (const auto& [path, content] : p.files) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || !write_all(fd, content) || (p.root && fchown(fd, uid, uid) != 0)) {
      fail(kFiles);
    }
    close(fd);
  }
  if (p.root && chown(p.staged_work.c_str(), uid, uid) != 0) fail(kFiles);
  for (const std::string* alias : {&p.staged_tmp, &p.staged_shm}) {
    if (mount(p.staged_work.c_str(), alias->c_str(), nullptr, MS_BIND, nullptr)) fail(kWorkMount);
  }
  if (mount(nullptr, kStage, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) != 0) {
    fail(kReadOnly);
  }
}

// The files, argv and a clean environment.
std::string prepare(const std::vector<std::string>& argv,
                    const std::vector<std::pair<std::string, std::string>>& files,
                    const SandboxLimits& l, ChildPlan& p) {
  if (l.disk_mb < 1) return "disk_mb must be at least 1";
  std::string error = plan_root(p, l);
  if (!error.empty()) return error;
  for (const auto& [name, content] : files) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      return "bad file name '" + name + "'";
    }
    p.files.emplace_back(p.staged_work + "/" + name, content);
  }
  p.path = resolve(argv[0]);
  p.argv_store = argv;
  p.env_store = {"PATH=/usr/local/bin:/usr/bin:/bin", std::string("HOME=") + kWork,
                 std::string("TMPDIR=") + kWork, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
                 "PYTHONHASHSEED=0"};
  for (auto& a : p.argv_store) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : p.env_store) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  std::string me = std::to_string(geteuid()), group = std::to_string(getegid());
  p.uid_map = me + " " + me + " 1";
  p.gid_map = group + " " + group + " 1";
  return "";
}

}  // namespace aha::rewards::sandbox_detail
