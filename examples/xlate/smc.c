/*
 * smc: self-modifying code. Instructions are written into `code`, a buffer in the "awx" section
 * .smc (its own R+W+X PT_LOAD segment, see rt/guest.lds.S: no mmap needed), made visible to
 * instruction fetch with fence.i, called, patched, and called again:
 *
 *   1. `addi a0, a0, 5; ret`, then its immediate patched to -100, then the addi replaced by slli;
 *   2. a loop with a branch and a jump (sum of 1..n);
 *   3. compressed instructions (c.addi, c.jr), patched;
 *   4. 256 x scale patch-and-call rounds on one function (the translation must follow each time);
 *   5. code that stores a new instruction into its own next slot, executes fence.i, then runs it.
 *
 * Output: every result. Exit status: the top 7 bits of a checksum of them.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"

__asm__(".pushsection .smc, \"awx\", @progbits\n"
        ".balign 64\n"
        ".globl code\n"
        "code: .space 512\n"
        ".popsection\n");
extern uint32_t code[128];

typedef long (*fn1)(long);
typedef long (*fn3)(long, long, long);

enum { ZERO = 0, RA = 1, T0 = 5, A0 = 10, A1 = 11, A2 = 12 };

static uint32_t i_type(int32_t imm, unsigned rs1, unsigned funct3, unsigned rd, unsigned opcode)
{
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode;
}

static uint32_t addi(unsigned rd, unsigned rs1, int32_t imm)
{
    return i_type(imm, rs1, 0, rd, 0x13);
}

static uint32_t slli(unsigned rd, unsigned rs1, unsigned shamt)
{
    return i_type((int32_t)(shamt & 63), rs1, 1, rd, 0x13);
}

static uint32_t add(unsigned rd, unsigned rs1, unsigned rs2)
{
    return rs2 << 20 | rs1 << 15 | rd << 7 | 0x33;
}

static uint32_t sw(unsigned rs2, unsigned rs1, int32_t imm)
{
    uint32_t u = (uint32_t)imm & 0xfff;
    return (u >> 5) << 25 | rs2 << 20 | rs1 << 15 | 2 << 12 | (u & 31) << 7 | 0x23;
}

static uint32_t beq(unsigned rs1, unsigned rs2, int32_t off)
{
    uint32_t u = (uint32_t)off;
    return ((u >> 12) & 1) << 31 | ((u >> 5) & 63) << 25 | rs2 << 20 | rs1 << 15 |
           ((u >> 1) & 15) << 8 | ((u >> 11) & 1) << 7 | 0x63;
}

static uint32_t jal(unsigned rd, int32_t off)
{
    uint32_t u = (uint32_t)off;
    return ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 | ((u >> 11) & 1) << 20 |
           ((u >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}

#define RET 0x00008067u      /* jalr zero, 0(ra) */
#define FENCE_I 0x0000100fu  /* fence.i */

static uint16_t c_addi(unsigned rd, int32_t imm)
{
    uint32_t u = (uint32_t)imm & 63;
    return (uint16_t)((u >> 5) << 12 | rd << 7 | (u & 31) << 2 | 1);
}

#define C_JR_RA 0x8082u      /* c.jr ra */

static void sync_icache(void)
{
    __asm__ volatile("fence.i" ::: "memory");
}

static void put(size_t at, const uint32_t *insns, size_t n)
{
    memcpy(&code[at], insns, n * sizeof *insns);
    sync_icache();
}

int main(int argc, char **argv)
{
    long rounds = 256 * guest_scale(argc, argv);
    uint64_t checksum = 0;
    fn1 f = (fn1)(void *)&code[0];

    /* 1. One function, patched twice. */
    put(0, (const uint32_t[]){addi(A0, A0, 5), RET}, 2);
    long r1 = f(37);
    put(0, (const uint32_t[]){addi(A0, A0, -100)}, 1);
    long r2 = f(37);
    put(0, (const uint32_t[]){slli(A0, A0, 3)}, 1);
    long r3 = f(37);
    printf("addi 5: %ld, addi -100: %ld, slli 3: %ld\n", r1, r2, r3);
    checksum = checksum * 31 + (uint64_t)r1 + (uint64_t)r2 * 3 + (uint64_t)r3 * 5;

    /* 2. sum(1..a0) with a backward jump and a forward branch. */
    fn1 sum = (fn1)(void *)&code[16];
    put(16,
        (const uint32_t[]){
            addi(T0, A0, 0),     /* t0 = n */
            addi(A0, ZERO, 0),   /* a0 = 0 */
            beq(T0, ZERO, 16),   /* loop: if t0 == 0 goto done */
            add(A0, A0, T0),
            addi(T0, T0, -1),
            jal(ZERO, -12),      /* goto loop */
            RET,                 /* done */
        },
        7);
    long s100 = sum(100), s0 = sum(0);
    printf("sum(1..100) = %ld, sum(1..0) = %ld\n", s100, s0);
    checksum = checksum * 31 + (uint64_t)s100 + (uint64_t)s0;

    /* 3. Compressed: c.addi a0, 3; c.jr ra -- then c.addi a0, -3. */
    uint16_t *half = (uint16_t *)(void *)&code[32];
    fn1 g = (fn1)(void *)half;
    half[0] = c_addi(A0, 3);
    half[1] = C_JR_RA;
    sync_icache();
    long c1 = g(1);
    half[0] = c_addi(A0, -3);
    sync_icache();
    long c2 = g(1);
    printf("c.addi 3: %ld, c.addi -3: %ld\n", c1, c2);
    checksum = checksum * 31 + (uint64_t)c1 + (uint64_t)c2;

    /* 4. Patch the same instruction over and over. */
    put(0, (const uint32_t[]){addi(A0, A0, 0), RET}, 2);
    uint64_t acc = 0;
    for (long k = 0; k < rounds; k++) {
        put(0, (const uint32_t[]){addi(A0, A0, (int32_t)(k * 7 % 2048) - 1024)}, 1);
        acc = (acc ^ (uint64_t)f(k)) * 0x100000001b3u;
    }
    printf("%ld patch-and-call rounds: %016" PRIx64 "\n", rounds, acc);
    checksum = checksum * 31 + acc;

    /* 5. The code patches its own next instruction: sw a1, 8(a2); fence.i; <slot>; ret,
       where a2 is the address of the sw. */
    fn3 h = (fn3)(void *)&code[48];
    put(48, (const uint32_t[]){sw(A1, A2, 8), FENCE_I, addi(A0, A0, 1), RET}, 4);
    long h1 = h(10, (long)addi(A0, A0, 100), (long)&code[48]);
    long h2 = h(10, (long)slli(A0, A0, 2), (long)&code[48]);
    printf("self-patched addi 100: %ld, slli 2: %ld\n", h1, h2);
    checksum = checksum * 31 + (uint64_t)h1 + (uint64_t)h2;

    printf("checksum = %016" PRIx64 "\n", checksum);
    /* The top bits: the low ones of this multiply-accumulate chain hardly depend on scale. */
    return (int)(checksum >> 57);
}
