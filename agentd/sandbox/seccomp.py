"""The seccomp deny-list every jailed process runs under, compiled once to classic BPF.

A deny-list (default allow) keeps ordinary tools working while closing the kernel surfaces a
jailed action has no business touching: debugging other processes (a child could ``ptrace``
bwrap's PID 1 and hang the run), io_uring, the key store, eBPF, mounts, userfaultfd, perf,
new namespaces (user namespaces are how unprivileged code regains capabilities) and the
terminal-injection ioctls. ``clone3`` answers ENOSYS so libc falls back to ``clone``, whose
flags we can inspect. Syscalls from a foreign ABI (i386, x32) hit libseccomp's bad-arch
action, which kills the process.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile

from agentd.errors import JailUnavailableError

DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace", "process_vm_readv", "process_vm_writev",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key",
    "bpf", "userfaultfd", "perf_event_open",
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    "unshare", "setns",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct",
    "syslog", "quotactl", "fanotify_init", "iopl", "ioperm", "personality",
)

# Any namespace flag on clone(2) is refused; on x86-64 the flags are the first argument.
CLONE_NAMESPACE_FLAGS: tuple[int, ...] = (
    0x10000000,  # CLONE_NEWUSER
    0x00020000,  # CLONE_NEWNS
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x02000000,  # CLONE_NEWCGROUP
)
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
_LOW_32 = 0xFFFFFFFF


def _build_filter() -> bytes:
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError) as exc:  # RuntimeError: libseccomp is missing
        raise JailUnavailableError(f"seccomp filter unavailable: {exc}") from None
    flt = sc.SyscallFilter(defaction=sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        flt.add_rule(deny, name)
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NAMESPACE_FLAGS:
        flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # The ioctl request is an int: compare only its low 32 bits, or 1<<32|TIOCSTI slips past.
    for request in (TIOCSTI, TIOCLINUX):
        flt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, _LOW_32, request))
    return _export(flt)


def _export(flt: object) -> bytes:
    with tempfile.TemporaryFile() as fh:
        flt.export_bpf(fh)  # type: ignore[attr-defined]
        fh.seek(0)
        return fh.read()


@functools.cache
def seccomp_bpf() -> bytes:
    """The compiled filter (cached for the life of the process)."""
    return _build_filter()


def data_fd(data: bytes, name: str = "agentd") -> int:
    """An anonymous, rewound file holding ``data``, for ``pass_fds`` (caller closes it)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd
