/*
 * recursion: scale rounds of naive Fibonacci, Ackermann, Towers of Hanoi and N-queens, each
 * counting its calls.
 *
 * Round r: fib(18 + r % 3), ack(2, 30 + r % 5), ack(3, 4 + r % 2), hanoi(12 + r % 3),
 * queens(6 + r % 3). Output: round 0's results and call counts, then a checksum over all rounds.
 * Exit status: the checksum & 0x7f.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "guest.h"

static uint64_t calls;
static uint32_t moves_hash;
static uint64_t moves;

static uint64_t fib(unsigned n)
{
    calls++;
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static uint64_t ack(uint64_t m, uint64_t n)
{
    calls++;
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static void hanoi(unsigned n, unsigned from, unsigned to, unsigned via)
{
    calls++;
    if (n == 0)
        return;
    hanoi(n - 1, from, via, to);
    moves++;
    moves_hash = moves_hash * 31 + from * 4 + to;
    hanoi(n - 1, via, to, from);
}

/* Solutions with queens on rows row..n-1, given the columns and diagonals already attacked. */
static unsigned queens(unsigned n, unsigned row, uint32_t cols, uint32_t diag1, uint32_t diag2)
{
    calls++;
    if (row == n)
        return 1;
    unsigned found = 0;
    for (unsigned col = 0; col < n; col++) {
        uint32_t c = 1u << col, d1 = 1u << (row + col), d2 = 1u << (row + n - 1 - col);
        if ((cols & c) || (diag1 & d1) || (diag2 & d2))
            continue;
        found += queens(n, row + 1, cols | c, diag1 | d1, diag2 | d2);
    }
    return found;
}

int main(int argc, char **argv)
{
    long rounds = guest_scale(argc, argv);
    uint64_t checksum = 0;
    for (long r = 0; r < rounds; r++) {
        uint64_t results[5], counts[5];
        unsigned fn = 18 + r % 3, a2 = 30 + r % 5, a3 = 4 + r % 2, hn = 12 + r % 3,
                 qn = 6 + r % 3;

        calls = 0;
        results[0] = fib(fn);
        counts[0] = calls;
        calls = 0;
        results[1] = ack(2, a2);
        counts[1] = calls;
        calls = 0;
        results[2] = ack(3, a3);
        counts[2] = calls;
        calls = moves = moves_hash = 0;
        hanoi(hn, 1, 3, 2);
        results[3] = (uint64_t)moves << 32 | moves_hash;
        counts[3] = calls;
        calls = 0;
        results[4] = queens(qn, 0, 0, 0, 0);
        counts[4] = calls;

        for (int i = 0; i < 5; i++)
            checksum = checksum * 1000003 + results[i] * 7 + counts[i];
        if (r == 0) {
            printf("fib(%u) = %" PRIu64 " in %" PRIu64 " calls\n", fn, results[0], counts[0]);
            printf("ack(2, %u) = %" PRIu64 " in %" PRIu64 " calls\n", a2, results[1], counts[1]);
            printf("ack(3, %u) = %" PRIu64 " in %" PRIu64 " calls\n", a3, results[2], counts[2]);
            printf("hanoi(%u) = %" PRIu64 " moves, hash %08" PRIx32 ", in %" PRIu64 " calls\n", hn,
                   moves, moves_hash, counts[3]);
            printf("queens(%u) = %" PRIu64 " solutions in %" PRIu64 " calls\n", qn, results[4],
                   counts[4]);
        }
    }
    printf("rounds = %ld, checksum = %016" PRIx64 "\n", rounds, checksum);
    return (int)(checksum & 0x7f);
}
