/*
 * counters: reads the user-level counters cycle, instret and time (Zicsr `csrr`, i.e. rdcycle,
 * rdinstret, rdtime) 256 x scale times, between bits of work, and prints only whether each
 * sequence is monotonic non-decreasing -- never the values, which differ from run to run and
 * between emulators. Exit status: 0 when all three are, else 1.
 */
#include <stdint.h>
#include <stdio.h>

#include "guest.h"

/* csrr of a user-level counter; volatile: every read must happen, in program order. */
#define COUNTER(name)                                                                         \
    static uint64_t read_##name(void)                                                         \
    {                                                                                         \
        uint64_t v;                                                                           \
        __asm__ volatile("csrr %0, " #name : "=r"(v));                                        \
        return v;                                                                             \
    }
COUNTER(cycle)
COUNTER(instret)
COUNTER(time)

int main(int argc, char **argv)
{
    long n = 256 * guest_scale(argc, argv);
    uint64_t cycle = read_cycle(), instret = read_instret(), time = read_time();
    int cycle_ok = 1, instret_ok = 1, time_ok = 1;
    volatile uint64_t sink = 0;
    for (long i = 0; i < n; i++) {
        for (long k = 0; k < i % 16; k++)
            sink += (uint64_t)k * (uint64_t)i;
        uint64_t c = read_cycle(), r = read_instret(), t = read_time();
        cycle_ok &= c >= cycle;
        instret_ok &= r >= instret;
        time_ok &= t >= time;
        cycle = c;
        instret = r;
        time = t;
    }
    printf("%ld samples\n", n);
    printf("cycle monotonic: %s\n", cycle_ok ? "yes" : "NO");
    printf("instret monotonic: %s\n", instret_ok ? "yes" : "NO");
    printf("time monotonic: %s\n", time_ok ? "yes" : "NO");
    return cycle_ok && instret_ok && time_ok ? 0 : 1;
}
