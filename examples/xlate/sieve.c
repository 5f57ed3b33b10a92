/*
 * sieve: the primes below 50000 x scale by the sieve of Eratosthenes, on a byte array.
 *
 * Output: the limit, the first ten primes, the count, the largest, the sum, and the number of
 * twin-prime pairs. Exit status: count & 0x7f.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "guest.h"

int main(int argc, char **argv)
{
    size_t limit = 50000 * (size_t)guest_scale(argc, argv);
    unsigned char *composite = calloc(limit, 1);
    if (composite == NULL) {
        printf("out of memory for %zu bytes\n", limit);
        return 1;
    }
    composite[0] = composite[1] = 1;
    for (size_t p = 2; p * p < limit; p++)
        if (!composite[p])
            for (size_t k = p * p; k < limit; k += p)
                composite[k] = 1;

    uint64_t count = 0, sum = 0, twins = 0, largest = 0;
    printf("limit = %zu\nfirst:", limit);
    for (size_t i = 2; i < limit; i++) {
        if (composite[i])
            continue;
        if (count < 10)
            printf(" %zu", i);
        count++;
        sum += i;
        if (largest != 0 && largest + 2 == i)
            twins++;
        largest = i;
    }
    printf("\ncount = %" PRIu64 ", largest = %" PRIu64 ", sum = %" PRIu64 ", twin pairs = %" PRIu64
           "\n",
           count, largest, sum, twins);
    free(composite);
    return (int)(count & 0x7f);
}
