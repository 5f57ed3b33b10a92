/*
 * The Linux system-call glue picolibc needs, and its stdin/stdout/stderr.
 *
 * Only five Linux riscv64 system calls are ever made, all with `ecall` (a7 = number, a0..a5 =
 * arguments, a0 = result or -errno): read 63, write 64, exit 93 (unused), exit_group 94, brk 214.
 *
 * stdout is picolibc tinystdio's FILE with our put function: it fills a buffer that goes out in
 * one write() when full, on fflush(stdout), and in _exit(), which exit() (and so a return from
 * main) ends in. stderr is unbuffered; stdin reads one byte per read().
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#define SYS_read 63
#define SYS_write 64
#define SYS_exit_group 94
#define SYS_brk 214

static long syscall3(long n, long a, long b, long c)
{
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

static long set_errno(long ret)
{
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

ssize_t read(int fd, void *buf, size_t count)
{
    return set_errno(syscall3(SYS_read, fd, (long)buf, (long)count));
}

ssize_t write(int fd, const void *buf, size_t count)
{
    return set_errno(syscall3(SYS_write, fd, (long)buf, (long)count));
}

/* -- sbrk on the Linux program break ---------------------------------------------------------- */

static uintptr_t cur_brk;

void *sbrk(ptrdiff_t incr)
{
    if (cur_brk == 0)
        cur_brk = (uintptr_t)syscall3(SYS_brk, 0, 0, 0);
    uintptr_t old = cur_brk;
    if (incr == 0)
        return (void *)old;
    uintptr_t want = old + (uintptr_t)incr;
    /* Linux returns the new break on success and the old one on failure. */
    uintptr_t got = (uintptr_t)syscall3(SYS_brk, (long)want, 0, 0);
    if (got != want) {
        errno = ENOMEM;
        return (void *)-1;
    }
    cur_brk = want;
    return (void *)old;
}

/* -- stdio ------------------------------------------------------------------------------------ */

static char out_buf[4096];
static size_t out_len;

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int stdout_flush(FILE *f)
{
    (void)f;
    int ret = write_all(1, out_buf, out_len);
    out_len = 0;
    return ret;
}

static int stdout_put(char c, FILE *f)
{
    out_buf[out_len++] = c;
    if (out_len == sizeof out_buf && stdout_flush(f) < 0)
        return _FDEV_ERR;
    return (unsigned char)c;
}

static int stderr_put(char c, FILE *f)
{
    (void)f;
    return write_all(2, &c, 1) < 0 ? _FDEV_ERR : (unsigned char)c;
}

static int stdin_get(FILE *f)
{
    (void)f;
    unsigned char c;
    ssize_t k = read(0, &c, 1);
    return k == 1 ? c : k == 0 ? _FDEV_EOF : _FDEV_ERR;
}

static FILE stdin_file = FDEV_SETUP_STREAM(NULL, stdin_get, NULL, _FDEV_SETUP_READ);
static FILE stdout_file = FDEV_SETUP_STREAM(stdout_put, NULL, stdout_flush, _FDEV_SETUP_WRITE);
static FILE stderr_file = FDEV_SETUP_STREAM(stderr_put, NULL, NULL, _FDEV_SETUP_WRITE);

FILE *const stdin = &stdin_file;
FILE *const stdout = &stdout_file;
FILE *const stderr = &stderr_file;

/* -- process exit ----------------------------------------------------------------------------- */

void _exit(int status)
{
    stdout_flush(stdout);
    for (;;)
        syscall3(SYS_exit_group, status, 0, 0);
}
