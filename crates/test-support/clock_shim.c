/*
 * A test fixture, preloaded (LD_PRELOAD) into a third-party NTP daemon so it
 * can run as a client of ntp-server without steering this machine's clock.
 *
 * Every call that would change the system clock (clock_adjtime/ntp_adjtime/
 * adjtimex with modes != 0, clock_settime, settimeofday) succeeds without
 * reaching the kernel: the values are kept in a per-process virtual state
 * that later reads overlay on the kernel's read-only answer. Reads go to the
 * kernel with modes = 0. The daemon also runs without CAP_SYS_TIME in its
 * bounding set, so even a call this file does not cover is refused.
 *
 * If CLOCK_SHIM_LOG names a file, each intercepted change is appended to it
 * as one line ("adjtime modes=0x.. offset=.. freq=..", "settime ..."), so a
 * test can see that the daemon acted on the time it received.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

static struct {
    int set;    /* which ADJ_* fields have been set */
    long offset, freq, maxerror, esterror, constant;
    int status;
} virt;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    const char *path = getenv("CLOCK_SHIM_LOG");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static int adjust(clockid_t clock, struct timex *t) {
    unsigned modes = t->modes;
    struct timex in = *t;
    if (modes != 0) {
        note("adjtime clock=%d modes=%#x offset=%ld freq=%ld status=%#x",
             (int)clock, modes, in.offset, in.freq, (unsigned)in.status);
        if (modes & ADJ_OFFSET) virt.offset = in.offset;
        if (modes & ADJ_FREQUENCY) virt.freq = in.freq;
        if (modes & ADJ_MAXERROR) virt.maxerror = in.maxerror;
        if (modes & ADJ_ESTERROR) virt.esterror = in.esterror;
        if (modes & ADJ_STATUS) virt.status = in.status;
        if (modes & ADJ_TIMECONST) virt.constant = in.constant;
        virt.set |= (int)modes;
    }
    memset(t, 0, sizeof *t);
    t->modes = 0;
    long r = syscall(SYS_clock_adjtime, clock, t);
    if (r < 0) return -1;
    if (virt.set & ADJ_OFFSET) t->offset = virt.offset;
    if (virt.set & ADJ_FREQUENCY) t->freq = virt.freq;
    if (virt.set & ADJ_MAXERROR) t->maxerror = virt.maxerror;
    if (virt.set & ADJ_ESTERROR) t->esterror = virt.esterror;
    if (virt.set & ADJ_STATUS) t->status = virt.status;
    if (virt.set & ADJ_TIMECONST) t->constant = virt.constant;
    /* The kernel's answer says whether the clock is synchronised. */
    if (virt.set & ADJ_STATUS) r = (virt.status & STA_UNSYNC) ? TIME_ERROR : TIME_OK;
    return (int)r;
}

int clock_adjtime(clockid_t clock, struct timex *t) { return adjust(clock, t); }
int ntp_adjtime(struct timex *t) { return adjust(CLOCK_REALTIME, t); }
int adjtimex(struct timex *t) { return adjust(CLOCK_REALTIME, t); }

int clock_settime(clockid_t clock, const struct timespec *ts) {
    note("settime clock=%d %lld.%09ld", (int)clock, (long long)ts->tv_sec, ts->tv_nsec);
    return 0;
}

int settimeofday(const struct timeval *tv, const struct timezone *tz) {
    (void)tz;
    if (tv) note("settimeofday %lld.%06ld", (long long)tv->tv_sec, (long)tv->tv_usec);
    return 0;
}
