/*
 * atomics: the A extension, single-threaded so that every result is deterministic.
 *
 *   - AMOs through the __atomic builtins (amoadd/amoswap/amoand/amoor/amoxor, .w and .d), and
 *     amomin/amomax/amominu/amomaxu in inline asm (GCC has no builtin for them);
 *   - compare-and-swap (lr/sc loops) on 32- and 64-bit objects, and on a byte by way of its
 *     word, succeeding and failing;
 *   - a hand-written lr.d/sc.d increment loop;
 *   - 32-bit AMO results, which the ISA sign-extends to 64 bits;
 *   - 1000 x scale rounds mixing all of these on a few counters.
 *
 * Output: every old value and final state. Exit status: a checksum & 0x7f.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "guest.h"

#define AMO(op, width, type)                                                                  \
    static type op##_##width(type *p, type v)                                                 \
    {                                                                                         \
        type old;                                                                             \
        __asm__ volatile(#op "." #width " %0, %2, %1" : "=r"(old), "+A"(*p) : "r"(v) : "memory"); \
        return old;                                                                           \
    }
AMO(amomin, w, int32_t)
AMO(amomax, w, int32_t)
AMO(amominu, w, uint32_t)
AMO(amomaxu, w, uint32_t)
AMO(amomin, d, int64_t)
AMO(amomax, d, int64_t)
AMO(amominu, d, uint64_t)
AMO(amomaxu, d, uint64_t)

/* A word whose bytes are compare-and-swapped one at a time. */
static union {
    uint32_t word;
    uint8_t bytes[4];
} cell;

/* Byte compare-and-swap on cell.bytes[i], built from a 32-bit one (lr.w/sc.w) on the word that
   holds it: GCC 12 would call libatomic's __atomic_compare_exchange_1, which picolibc lacks. */
static bool cas_byte(unsigned i, uint8_t *expected, uint8_t desired)
{
    unsigned shift = 8 * i; /* little-endian */
    uint32_t mask = 0xffu << shift;
    uint32_t old = __atomic_load_n(&cell.word, __ATOMIC_RELAXED);
    for (;;) {
        uint8_t cur = (uint8_t)((old & mask) >> shift);
        if (cur != *expected) {
            *expected = cur;
            return false;
        }
        uint32_t new = (old & ~mask) | (uint32_t)desired << shift;
        if (__atomic_compare_exchange_n(&cell.word, &old, new, true, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED))
            return true;
    }
}

/* *p += v with an explicit lr.d/sc.d loop; returns the old value. */
static uint64_t lrsc_add(uint64_t *p, uint64_t v)
{
    uint64_t old, tmp;
    __asm__ volatile("1: lr.d.aq %0, %2\n"
                     "   add %1, %0, %3\n"
                     "   sc.d.rl %1, %1, %2\n"
                     "   bnez %1, 1b"
                     : "=&r"(old), "=&r"(tmp), "+A"(*p)
                     : "r"(v)
                     : "memory");
    return old;
}

static uint64_t checksum = 0;

/* Folds values into the checksum: NOTE(a, b, ...). */
#define NOTE(...) note((const uint64_t[]){__VA_ARGS__}, sizeof((uint64_t[]){__VA_ARGS__}) / 8)
static void note(const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        checksum = checksum * 0x100000001b3u ^ v[i];
}

int main(int argc, char **argv)
{
    long rounds = 1000 * guest_scale(argc, argv);

    int32_t w = 0x7ffffff0;
    int64_t d = -5;
    long old_w = __atomic_fetch_add(&w, 0x20, __ATOMIC_SEQ_CST); /* wraps to negative */
    long old_d = __atomic_fetch_add(&d, 10, __ATOMIC_ACQ_REL);
    printf("fetch_add.w: old %ld new %" PRId32 "; fetch_add.d: old %ld new %" PRId64 "\n", old_w,
           w, old_d, d);
    NOTE(old_w, w, old_d, d);

    uint32_t bits = 0xf0f0f0f0u;
    uint32_t o1 = __atomic_fetch_and(&bits, 0xff00ff00u, __ATOMIC_RELAXED);
    uint32_t o2 = __atomic_fetch_or(&bits, 0x0000000fu, __ATOMIC_RELAXED);
    uint32_t o3 = __atomic_fetch_xor(&bits, 0xffffffffu, __ATOMIC_RELAXED);
    uint32_t o4 = __atomic_exchange_n(&bits, 0x12345678u, __ATOMIC_SEQ_CST);
    printf("and/or/xor/swap.w: %08" PRIx32 " %08" PRIx32 " %08" PRIx32 " %08" PRIx32
           " -> %08" PRIx32 "\n",
           o1, o2, o3, o4, bits);
    NOTE(o1, o2, o3, o4, bits);

    int32_t mw = -3;
    long m1 = amomax_w(&mw, 7), m2 = amomin_w(&mw, -100);
    uint32_t uw = 5;
    long m3 = (int32_t)amomaxu_w(&uw, 0x80000000u), m4 = (int32_t)amominu_w(&uw, 9);
    printf("amomax/amomin.w: %ld %ld -> %" PRId32 "; amomaxu/amominu.w: %ld %ld -> %" PRIu32 "\n",
           m1, m2, mw, m3, m4, uw);
    int64_t md = 1;
    int64_t m5 = amomin_d(&md, INT64_MIN), m6 = amomax_d(&md, 2);
    uint64_t ud = 3;
    uint64_t m7 = amomaxu_d(&ud, UINT64_MAX), m8 = amominu_d(&ud, 4);
    printf("amomin/amomax.d: %" PRId64 " %" PRId64 " -> %" PRId64 "; amomaxu/amominu.d: %" PRIu64
           " %" PRIu64 " -> %" PRIu64 "\n",
           m5, m6, md, m7, m8, ud);
    NOTE(m1, m2, m3, m4);
    NOTE(m5, m6, m7, m8, md, ud);

    cell.word = 0x04c80201u; /* bytes 01 02 c8 04 */
    uint8_t e8 = 1;
    uint32_t u32 = 7, e32 = 7;
    uint64_t u64 = 1ULL << 40, e64 = 5;
    bool s8a = cas_byte(2, &e8, 3); /* fails: byte 2 is 0xc8, not 1 */
    bool s8b = cas_byte(2, &e8, 3); /* succeeds with the value the failure returned */
    bool s32 = __atomic_compare_exchange_n(&u32, &e32, 0xdeadbeefu, false, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED);
    bool s64 = __atomic_compare_exchange_n(&u64, &e64, 0, false, __ATOMIC_RELEASE,
                                           __ATOMIC_RELAXED);
    printf("cas8: %d %d expected %u -> %08" PRIx32 "; cas32: %d %08" PRIx32 "; cas64: %d %" PRIu64
           " expected %" PRIu64 "\n",
           s8a, s8b, e8, cell.word, s32, u32, s64, u64, e64);
    NOTE(s8a, s8b, e8, cell.word, s32, u32, s64, u64, e64);

    uint64_t counter = 100;
    uint64_t before = lrsc_add(&counter, 23);
    printf("lr/sc add: %" PRIu64 " -> %" PRIu64 "\n", before, counter);
    NOTE(before, counter);

    uint64_t total = 0, peak = 0;
    uint32_t mix = 1;
    int64_t low = 0;
    for (long i = 0; i < rounds; i++) {
        __atomic_fetch_add(&total, (uint64_t)i, __ATOMIC_RELAXED);
        lrsc_add(&total, 1);
        uint64_t seen = __atomic_load_n(&peak, __ATOMIC_RELAXED);
        uint64_t want = (uint64_t)(i * 7919 % 10007);
        while (want > seen &&
               !__atomic_compare_exchange_n(&peak, &seen, want, true, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
        }
        __atomic_fetch_xor(&mix, (uint32_t)i * 2654435761u, __ATOMIC_RELAXED);
        amomin_d(&low, (int64_t)(i % 1000) - (int64_t)(i % 777) * 3);
    }
    printf("%ld rounds: total %" PRIu64 ", peak %" PRIu64 ", mix %08" PRIx32 ", low %" PRId64 "\n",
           rounds, total, peak, mix, low);
    NOTE(total, peak, mix, low);

    printf("checksum = %016" PRIx64 "\n", checksum);
    return (int)(checksum & 0x7f);
}
