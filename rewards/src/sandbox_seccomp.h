// The sandboxed program's seccomp filter (internal to sandbox.cpp). It closes what the
// namespaces leave open: a program may not make namespaces of its own (a user namespace would
// let it mount a tmpfs outside its disk quota), mount anything, or reach the kernel's riskiest
// interfaces (bpf, io_uring, userfaultfd, keyrings, perf), hold System V shared memory or
// memfds (memory outside both RLIMIT_AS and the disk quota), or open sockets of a family the
// network namespace does not confine (AF_VSOCK reaches the hypervisor and vsock listeners).
// Everything else is allowed.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace aha::rewards::detail {

#if defined(__x86_64__)
constexpr uint32_t kSeccompArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kSeccompArch = AUDIT_ARCH_AARCH64;
#else
#error "the sandbox's seccomp filter knows x86_64 and aarch64 only"
#endif

// Installs the filter on the calling thread (after PR_SET_NO_NEW_PRIVS); async-signal-safe.
// Returns false when the kernel refuses it.
inline bool install_seccomp_filter() {
  constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | EPERM;
  constexpr uint32_t kNamespaces = CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                   CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
  const int denied[] = {
      SYS_unshare, SYS_setns, SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_bpf,
      SYS_perf_event_open, SYS_userfaultfd, SYS_keyctl, SYS_add_key, SYS_request_key,
      SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register, SYS_open_tree,
      SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_mount_setattr,
      SYS_shmget,  // System V segments outlive their mapping: memory past RLIMIT_AS
  };
  struct sock_filter f[96];
  unsigned short n = 0;
  auto stmt = [&](uint16_t code, uint32_t k) { f[n++] = BPF_STMT(code, k); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
    f[n++] = BPF_JUMP(code, k, jt, jf);
  };
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, kSeccompArch, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);  // another ABI (i386 int 0x80)
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);  // x32 numbers
  stmt(BPF_RET | BPF_K, kDeny);
#endif
  for (int nr : denied) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, kDeny);
  }
  // sockets: AF_UNIX (the private root holds no host socket) and the families the empty network
  // namespace confines; anything else gets EAFNOSUPPORT, as from a kernel without it
  for (int nr : {SYS_socket, SYS_socketpair}) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 7);
    stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    jump(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 4, 0);
    jump(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 3, 0);
    jump(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 2, 0);
    jump(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 1, 0);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  // memfd_create: up to RLIMIT_FSIZE in each of RLIMIT_NOFILE files, per process, and pages
  // that are not mapped count against no rlimit. ENOSYS, as from an old kernel, sends careful
  // callers to their shm_open fallback, which lands in /dev/shm: the quota'd work dir.
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_create, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
#ifdef SYS_memfd_secret
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_secret, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
#endif
  // clone3 hides its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));  // low half of flags
  jump(BPF_JMP | BPF_JSET | BPF_K, kNamespaces, 0, 1);
  stmt(BPF_RET | BPF_K, kDeny);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog{n, f};
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
}

}  // namespace aha::rewards::detail
