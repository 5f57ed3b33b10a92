/*
 * What every xlate guest program shares: the scale argument and the pseudo-random generator.
 *
 * tests/test_xlate_progs.py re-implements xorshift64() in Python to compute the expected
 * output independently of any RISC-V emulator, so keep the two in step.
 */
#ifndef XLATE_GUEST_H
#define XLATE_GUEST_H

#include <stdint.h>
#include <stdlib.h>

/* argv[1] as a positive scale factor, 1 when absent or not a positive number. */
static inline long guest_scale(int argc, char **argv)
{
    long s = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    return s > 0 ? s : 1;
}

/* Marsaglia's xorshift64 (13, 7, 17); the state must not be 0. */
static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

#endif
