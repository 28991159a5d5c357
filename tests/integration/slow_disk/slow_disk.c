/* A slow disk for one broker process, loaded with LD_PRELOAD by the
 * cluster tests: every write the Raft log makes takes TASKMILL_SLOW_DISK_MS
 * longer, as on a disk with that much latency, without changing what is
 * written.
 *
 * libraft writes its log with Linux AIO (io_submit through syscall(2)): a
 * non-blocking submission (RWF_NOWAIT) is refused with EAGAIN, as a busy
 * disk refuses it, so libraft submits again from its thread pool; there,
 * and in fsync and fdatasync, the call sleeps first. The broker's own loop
 * thread never sleeps here, as it would not wait on a real slow disk, except
 * in libraft's own synchronous writes (its term and vote, with fsync). The
 * probe libraft makes of the disk at start (.probe) goes through as is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

static long delay_ms(void) {
    static long ms = -1;
    if (ms < 0) {
        const char* v = getenv("TASKMILL_SLOW_DISK_MS");
        ms = v != NULL ? atol(v) : 0;
        if (ms > 0) {
            fprintf(stderr, "slow-disk: writes of pid %d take %ld ms more\n", (int)getpid(), ms);
        }
    }
    return ms;
}

static void wait_a_while(void) {
    long ms = delay_ms();
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* libraft probes what the disk can do on a file named .probe when it
 * starts; the probe sees the disk as it is. */
static int is_probe(int fd) {
    char link[64];
    char path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return 0;
    }
    path[n] = '\0';
    const char* base = strrchr(path, '/');
    return base != NULL && strncmp(base + 1, ".probe", 6) == 0;
}

typedef long (*syscall_fn)(long, ...);

long syscall(long number, ...) {
    static syscall_fn real = NULL;
    if (real == NULL) {
        real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
    }
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; ++i) {
        a[i] = va_arg(ap, long);
    }
    va_end(ap);
    if (number == SYS_io_submit && delay_ms() > 0) {
        struct iocb** iocbs = (struct iocb**)a[2];
        for (long i = 0; i < a[1]; ++i) {
            if (is_probe((int)iocbs[i]->aio_fildes)) {
                return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
            }
            if ((iocbs[i]->aio_rw_flags & RWF_NOWAIT) != 0) {
                errno = EAGAIN;
                return -1;
            }
        }
        wait_a_while();
    }
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int fsync(int fd) {
    static int (*real)(int) = NULL;
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    wait_a_while();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int) = NULL;
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    wait_a_while();
    return real(fd);
}
