/*
 * arith: the integer corner cases where RISC-V and x86-64 disagree, each computed with the exact
 * instruction (inline asm: in C most of these are undefined behaviour).
 *
 *   - division by zero (quotient all ones, remainder the dividend) and the overflowing
 *     INT_MIN / -1 (quotient INT_MIN, remainder 0), 64- and 32-bit (x86 idiv traps on both);
 *   - mulh/mulhsu/mulhu, mulw;
 *   - *w results sign-extended from bit 31; shift amounts taken mod 64 (mod 32 for *w);
 *   - slt/sltu.
 *
 * Every operation runs on (v, e) and (e, v) for each of 16 edge values e and each v of the
 * edge values followed by 8 x scale pseudo-random ones; each operation's results are hashed
 * (h = (h ^ result) * FNV prime, 64-bit). Output: a few named cases, then one hash per
 * operation. Exit status: the combined hash & 0x7f.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "guest.h"

#define OP(name)                                                                              \
    static int64_t op_##name(int64_t a, int64_t b)                                            \
    {                                                                                         \
        int64_t r;                                                                            \
        __asm__(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));                              \
        return r;                                                                             \
    }
#define OPS(X)                                                                                \
    X(div) X(divu) X(rem) X(remu) X(divw) X(divuw) X(remw) X(remuw) X(mul) X(mulh) X(mulhsu)  \
    X(mulhu) X(mulw) X(sll) X(srl) X(sra) X(sllw) X(srlw) X(sraw) X(addw) X(subw) X(slt)    \
    X(sltu)
OPS(OP)

typedef int64_t (*op_fn)(int64_t, int64_t);
#define ENTRY(name) {#name, op_##name},
static const struct {
    const char *name;
    op_fn fn;
} ops[] = {OPS(ENTRY)};
#define N_OPS (sizeof ops / sizeof ops[0])

static const int64_t edges[] = {
    0, 1, -1, 2, -2, 7, -7, 31, 32, 63, 64,
    INT64_MIN, INT64_MAX, INT32_MIN, INT32_MAX, 0xffffffffLL,
};
#define N_EDGES (sizeof edges / sizeof edges[0])

static uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3u;
}

int main(int argc, char **argv)
{
    long n_random = 8 * guest_scale(argc, argv);
    size_t n = N_EDGES + (size_t)n_random;
    int64_t *values = malloc(n * sizeof *values);
    if (values == NULL) {
        printf("out of memory for %zu values\n", n);
        return 1;
    }
    uint64_t state = 0xda942042e4dd58b5u;
    for (size_t i = 0; i < n; i++)
        values[i] = i < N_EDGES ? edges[i] : (int64_t)xorshift64(&state);

    printf("div(7, 0) = %" PRId64 ", rem(7, 0) = %" PRId64 ", divu(7, 0) = %" PRIx64 "\n",
           op_div(7, 0), op_rem(7, 0), (uint64_t)op_divu(7, 0));
    printf("div(INT64_MIN, -1) = %" PRId64 ", rem(INT64_MIN, -1) = %" PRId64 "\n",
           op_div(INT64_MIN, -1), op_rem(INT64_MIN, -1));
    printf("divw(INT32_MIN, -1) = %" PRId64 ", remw(INT32_MIN, -1) = %" PRId64
           ", divuw(-1, 0) = %" PRId64 ", remw(-7, 0) = %" PRId64 "\n",
           op_divw(INT32_MIN, -1), op_remw(INT32_MIN, -1), op_divuw(-1, 0), op_remw(-7, 0));
    printf("mulh(INT64_MIN, INT64_MIN) = %" PRIx64 ", mulhsu(-1, -1) = %" PRId64
           ", mulhu(-1, -1) = %" PRIx64 "\n",
           (uint64_t)op_mulh(INT64_MIN, INT64_MIN), op_mulhsu(-1, -1), (uint64_t)op_mulhu(-1, -1));
    printf("addw(INT32_MAX, 1) = %" PRId64 ", sll(1, 65) = %" PRId64 ", sraw(INT32_MIN, 33) = %" PRId64
           ", srlw(-1, 36) = %" PRId64 "\n",
           op_addw(INT32_MAX, 1), op_sll(1, 65), op_sraw(INT32_MIN, 33), op_srlw(-1, 36));

    uint64_t all = 0xcbf29ce484222325u;
    for (size_t k = 0; k < N_OPS; k++) {
        uint64_t h = 0xcbf29ce484222325u;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < N_EDGES; j++) {
                h = mix(h, (uint64_t)ops[k].fn(values[i], edges[j]));
                h = mix(h, (uint64_t)ops[k].fn(edges[j], values[i]));
            }
        printf("%-7s %016" PRIx64 "\n", ops[k].name, h);
        all = mix(all, h);
    }
    printf("all = %016" PRIx64 "\n", all);
    free(values);
    return (int)(all & 0x7f);
}
