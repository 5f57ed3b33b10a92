/*
 * crc32: table-driven CRC-32 (the zlib/IEEE 802.3 one, reflected polynomial 0xEDB88320) of
 * 16 KiB x scale of xorshift64 data, in one pass and again in 1000-byte chunks.
 *
 * Output: the check value of "123456789" (cbf43926), two table entries, the CRC of the data
 * and whether the chunked CRC matches. Exit status: the data's CRC & 0x7f.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

static uint32_t table[256];

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

/* Continues a CRC: crc32_update(crc32_update(0, a), b) == crc32_update(0, a ++ b). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

int main(int argc, char **argv)
{
    size_t n = 16384 * (size_t)guest_scale(argc, argv);
    uint8_t *data = malloc(n);
    if (data == NULL) {
        printf("out of memory for %zu bytes\n", n);
        return 1;
    }
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = xorshift64(&state);
        memcpy(data + i, &r, 8); /* little-endian, as the Python oracle packs it */
    }

    make_table();
    printf("table[1] = %08" PRIx32 ", table[255] = %08" PRIx32 "\n", table[1], table[255]);
    printf("crc32(\"123456789\") = %08" PRIx32 "\n",
           crc32_update(0, (const uint8_t *)"123456789", 9));

    uint32_t whole = crc32_update(0, data, n);
    uint32_t chunked = 0;
    for (size_t off = 0; off < n; off += 1000)
        chunked = crc32_update(chunked, data + off, n - off < 1000 ? n - off : 1000);
    printf("crc32(%zu bytes) = %08" PRIx32 "\n", n, whole);
    printf("chunked: %s\n", chunked == whole ? "same" : "DIFFERENT");
    free(data);
    return (int)(whole & 0x7f);
}
