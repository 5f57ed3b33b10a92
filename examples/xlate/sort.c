/*
 * sort: 1000 x scale pseudo-random 32-bit keys (with duplicates) sorted twice, by picolibc's
 * qsort() and by our own top-down merge sort, both checked sorted and equal.
 *
 * The comparison counters are updated with __atomic_fetch_add (amoadd.d, the A extension).
 * Output: n, min, median, max, the merge sort's comparison count (deterministic: the Python
 * oracle runs the same algorithm), qsort's count (picolibc's algorithm: only printed), a
 * position-weighted checksum. Exit status: checksum & 0x7f.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

static uint64_t qsort_compares;
static uint64_t merge_compares;

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    __atomic_fetch_add(&qsort_compares, 1, __ATOMIC_RELAXED);
    return (a > b) - (a < b);
}

/* Sorts a[lo, hi) stably, using tmp[lo, hi) as scratch. */
static void merge_sort(uint32_t *a, uint32_t *tmp, size_t lo, size_t hi)
{
    if (hi - lo < 2)
        return;
    size_t mid = lo + (hi - lo) / 2;
    merge_sort(a, tmp, lo, mid);
    merge_sort(a, tmp, mid, hi);
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        __atomic_fetch_add(&merge_compares, 1, __ATOMIC_RELAXED);
        tmp[k++] = a[j] < a[i] ? a[j++] : a[i++];
    }
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < hi)
        tmp[k++] = a[j++];
    memcpy(a + lo, tmp + lo, (hi - lo) * sizeof *a);
}

static int is_sorted(const uint32_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (a[i - 1] > a[i])
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    size_t n = 1000 * (size_t)guest_scale(argc, argv);
    uint32_t *q = malloc(n * sizeof *q);
    uint32_t *m = malloc(n * sizeof *m);
    uint32_t *tmp = malloc(n * sizeof *tmp);
    if (q == NULL || m == NULL || tmp == NULL) {
        printf("out of memory for %zu keys\n", n);
        return 1;
    }
    uint64_t state = 88172645463325252u;
    for (size_t i = 0; i < n; i++)
        q[i] = m[i] = (uint32_t)(xorshift64(&state) >> 32) % 100000u;

    qsort(q, n, sizeof *q, cmp_u32);
    merge_sort(m, tmp, 0, n);

    uint64_t checksum = 0;
    for (size_t i = 0; i < n; i++)
        checksum += (uint64_t)q[i] * (i + 1);
    printf("n = %zu\n", n);
    printf("min = %" PRIu32 ", median = %" PRIu32 ", max = %" PRIu32 "\n", q[0], q[n / 2],
           q[n - 1]);
    printf("qsort sorted: %s, merge sort sorted: %s, equal: %s\n", is_sorted(q, n) ? "yes" : "NO",
           is_sorted(m, n) ? "yes" : "NO", memcmp(q, m, n * sizeof *q) == 0 ? "yes" : "NO");
    printf("merge sort comparisons = %" PRIu64 "\n", merge_compares);
    printf("qsort comparisons = %" PRIu64 "\n", qsort_compares);
    printf("checksum = %016" PRIx64 "\n", checksum);
    free(tmp);
    free(m);
    free(q);
    return (int)(checksum & 0x7f);
}
