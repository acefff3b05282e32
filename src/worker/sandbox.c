/* The worker's sandbox: a seccomp filter (libseccomp) installed after the
 * guest is loaded and before its entry runs.  Every system call not listed
 * here traps (SIGSYS), and fault.c's handler tells the node which call it
 * was (CRASH with code SIGSYS and the call's number as the address).  The
 * guest talks to the world through the node only: it can read and write
 * the descriptors the worker has (its link to the node, the standard
 * ones), receive on its lane socket (fd 4) and on its link when that is a
 * socket, map memory, handle signals, read clocks and sleep, and nothing
 * else — no new descriptors but the lanes the node sends on fd 4, no
 * processes, no signals to others.  The list
 * and the reason for each call are in docs/architecture.md ("Sandbox"). */
#include "worker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Allowed whatever their arguments. */
static const int allowed[] = {
    /* I/O on the descriptors the worker already has */
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendmsg),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(close),
    /* memory */
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mprotect),
    SCMP_SYS(mremap),
    SCMP_SYS(brk),
    /* signals, the worker's own */
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall),
    /* time */
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    /* the rest of a single-threaded process's life */
    SCMP_SYS(getrandom),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(futex),
    /* the wait over the link's ring and the lanes' (link.c) */
    SCMP_SYS(futex_waitv),
    SCMP_SYS(sched_yield),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    /* facts about the worker and the machine, read only: libc asks them
     * (qsort: sysinfo for the memory size; stdio: fstat of its stream's
     * descriptor; sysconf) */
    SCMP_SYS(sysinfo),
    SCMP_SYS(uname),
    SCMP_SYS(getrusage),
    SCMP_SYS(times),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getppid),
    SCMP_SYS(fstat),
    SCMP_SYS(lseek),
};

int hcw_sandbox_init(bool socket_link, char *err, size_t errlen)
{
    /* What libc would open lazily once the filter is in: the time zone
     * (localtime and friends read /etc/localtime on first use). */
    tzset();
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot start the sandbox's filter");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof allowed[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* raise() and abort() signal the worker itself (tgkill(getpid(), tid,
     * sig)); no signal to another process. */
    const struct scmp_arg_cmp self = {
        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)getpid()};
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill),
                                          1, &self);
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill),
                                          1, &self);
    /* madvise, but MADV_REMOVE (failed, EPERM): on a shared file mapping
     * it punches the file, and the state slot's header is written by the
     * node through its own mapping, which must not meet a hole (a SIGBUS
     * on a full disk) */
    const struct scmp_arg_cmp remove_advice = {
        .arg = 2, .op = SCMP_CMP_EQ, .datum_a = MADV_REMOVE};
    const struct scmp_arg_cmp other_advice = {
        .arg = 2, .op = SCMP_CMP_NE, .datum_a = MADV_REMOVE};
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW,
                                          SCMP_SYS(madvise), 1, &other_advice);
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ERRNO(EPERM),
                                          SCMP_SYS(madvise), 1, &remove_advice);
    /* recvmsg, the one call that can bring a descriptor (SCM_RIGHTS): on
     * the lane socket only, where the node sends lanes (lane.c), and on a
     * socket link (which reads with read(), but a link is the worker's
     * own); on any other descriptor it traps. */
    const struct scmp_arg_cmp lane_fd = {
        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = HCW_LANE_FD};
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW,
                                          SCMP_SYS(recvmsg), 1, &lane_fd);
    const struct scmp_arg_cmp link_fd = {
        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = HCW_FD};
    if (rc == 0 && socket_link)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW,
                                          SCMP_SYS(recvmsg), 1, &link_fd);
    /* isatty() (a terminal's attributes, read only): the sanitizers ask
     * it of stderr before a report. */
    const struct scmp_arg_cmp tcgets = {
        .arg = 1, .op = SCMP_CMP_EQ, .datum_a = TCGETS};
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl),
                                          1, &tcgets);
    /* fstat through newfstatat(fd, "", AT_EMPTY_PATH): glibc's stdio asks
     * it of the descriptor it writes to; without AT_EMPTY_PATH (a stat of
     * a path) it traps. */
    const struct scmp_arg_cmp empty_path = {.arg = 3,
                                            .op = SCMP_CMP_MASKED_EQ,
                                            .datum_a = AT_EMPTY_PATH,
                                            .datum_b = AT_EMPTY_PATH};
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW,
                                          SCMP_SYS(newfstatat), 1, &empty_path);
    /* getrlimit through prlimit64(0, resource, NULL, old): reading only */
    const struct scmp_arg_cmp read_only[2] = {
        {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = 0},
        {.arg = 2, .op = SCMP_CMP_EQ, .datum_a = 0}};
    if (rc == 0)
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW,
                                          SCMP_SYS(prlimit64), 2, read_only);
#if defined(HYPERC_SANITIZED) && defined(__NR_open) && defined(__NR_stat)
    /* While it writes a report, the sanitizers' runtime reads
     * /proc/self/maps and looks for a symbolizer with the old open(2) and
     * stat(2); glibc (the guest's fopen, stat) uses openat and newfstatat,
     * which still trap.  Failing them lets the report finish, without
     * symbols. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOENT), SCMP_SYS(stat), 0);
#endif
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "cannot install the sandbox: %s", strerror(-rc));
        return -1;
    }
    return 0;
}
