/*
 * matmul: scale rounds of a 32x32 integer matrix product C = A B with entries in [-64, 63],
 * computed twice (i-k-j order, and as dot products against the transpose of B) and compared,
 * plus det(A) mod the prime 2^31 - 1 by Gaussian elimination (64-bit mul and remu, inverses by
 * Fermat's little theorem).
 *
 * Output per round 0: trace, corners and checksum of C, det(A) mod p; then the checksum over all
 * rounds. Exit status: the final checksum & 0x7f.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "guest.h"

#define N 32
#define P 2147483647u /* 2^31 - 1 */

static int32_t a[N][N], b[N][N], bt[N][N], c[N][N], d[N][N];
static uint64_t m[N][N];

static uint64_t pow_mod(uint64_t x, uint64_t e)
{
    uint64_t r = 1;
    for (x %= P; e; e >>= 1, x = x * x % P)
        if (e & 1)
            r = r * x % P;
    return r;
}

/* det(a) mod P, on a copy in m. */
static uint64_t det_mod_p(void)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            m[i][j] = (uint64_t)((int64_t)a[i][j] + P) % P;
    uint64_t det = 1;
    for (int col = 0; col < N; col++) {
        int piv = col;
        while (piv < N && m[piv][col] == 0)
            piv++;
        if (piv == N)
            return 0;
        if (piv != col) {
            for (int j = 0; j < N; j++) {
                uint64_t t = m[col][j];
                m[col][j] = m[piv][j];
                m[piv][j] = t;
            }
            det = (P - det) % P;
        }
        det = det * m[col][col] % P;
        uint64_t inv = pow_mod(m[col][col], P - 2);
        for (int i = col + 1; i < N; i++) {
            uint64_t f = m[i][col] * inv % P;
            for (int j = col; j < N; j++)
                m[i][j] = (m[i][j] + (P - f) * m[col][j]) % P;
        }
    }
    return det;
}

int main(int argc, char **argv)
{
    long rounds = guest_scale(argc, argv);
    uint64_t state = 0x2545F4914F6CDD1Du;
    uint64_t total = 0;
    int agree = 1;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                a[i][j] = (int32_t)(xorshift64(&state) % 128) - 64;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                b[i][j] = (int32_t)(xorshift64(&state) % 128) - 64;

        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                c[i][j] = 0;
                bt[j][i] = b[i][j];
            }
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++)
                for (int j = 0; j < N; j++)
                    c[i][j] += a[i][k] * b[k][j];
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                int32_t s = 0;
                for (int k = 0; k < N; k++)
                    s += a[i][k] * bt[j][k];
                d[i][j] = s;
                agree &= s == c[i][j];
            }

        int64_t trace = 0;
        uint64_t checksum = 0;
        for (int i = 0; i < N; i++) {
            trace += c[i][i];
            for (int j = 0; j < N; j++)
                checksum += (uint64_t)(int64_t)c[i][j] * (uint64_t)(i * N + j + 1);
        }
        total = total * 31 + checksum;
        if (r == 0) {
            printf("C[0][0] = %" PRId32 ", C[%d][%d] = %" PRId32 ", trace = %" PRId64 "\n",
                   c[0][0], N - 1, N - 1, c[N - 1][N - 1], trace);
            printf("checksum = %016" PRIx64 "\n", checksum);
            printf("det(A) mod p = %" PRIu64 "\n", det_mod_p());
        }
    }
    printf("rounds = %ld, products agree: %s\n", rounds, agree ? "yes" : "NO");
    printf("total = %016" PRIx64 "\n", total);
    return (int)(total & 0x7f);
}
