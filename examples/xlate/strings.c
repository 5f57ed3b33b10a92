/*
 * strings: picolibc's string functions and printf formatting.
 *
 * Part one prints fixed cases (each line's expected text is derived in the Python oracle from
 * Python's own %-formatting and string methods). Part two formats 200 x scale pseudo-random
 * values with snprintf and hashes the text (64-bit FNV-1a). Exit status: the hash & 0x7f.
 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "guest.h"

/* Truncating is what two of the cases test. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#pragma GCC diagnostic ignored "-Wstringop-truncation"

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 0x100000001b3u;
    }
    return h;
}

static void formats(void)
{
    printf("[%d] [%i] [%u] [%d]\n", -42, 17, 4000000000u, INT_MIN);
    printf("[%x] [%X] [%o] [%#x] [%#X]\n", 48879u, 48879u, 511u, 255u, 255u);
    printf("[%5d] [%-5d] [%05d] [%+d] [% d] [%+d]\n", 42, 42, -42, 7, 7, -7);
    printf("[%.5d] [%8.3d] [%-8.3d] [%*d] [%-*d]\n", 42, -7, 7, 6, 99, 6, 99);
    printf("[%ld] [%ld] [%lu]\n", LONG_MIN, LONG_MAX, ULONG_MAX);
    printf("[%lx] [%016lx] [%#lx]\n", 0xdeadbeefcafeUL, 0x1234UL, ULONG_MAX);
    printf("[%s] [%10s] [%-10s] [%.3s] [%c%c%c] [%%]\n", "abc", "right", "left", "truncate", 'x',
           'y', 'z');
    printf("[%hhd] [%hhu] [%hd] [%hu]\n", (signed char)-128, (unsigned char)200, (short)-32768,
           (unsigned short)65535);
    printf("[%p] [%zu] [%zd] [%jd]\n", (void *)0x1234, (size_t)123456789, (ssize_t)-5,
           (intmax_t)-9000000000);
    printf("[%" PRId64 "] [%" PRIu64 "] [%" PRIx64 "]\n", INT64_MIN, UINT64_MAX,
           (uint64_t)0x0123456789abcdefULL);
}

static void string_functions(void)
{
    char buf[64];

    strcpy(buf, "Hello");
    strcat(buf, ", ");
    strncat(buf, "world!!!", 6);
    printf("strcat: %s (%zu)\n", buf, strlen(buf));
    printf("strcmp: %d %d %d\n", sign(strcmp("abc", "abd")), sign(strcmp("abc", "abc")),
           sign(strcmp("b", "abc")));
    printf("strncmp: %d %d\n", sign(strncmp("abcdef", "abcxyz", 3)),
           sign(strncmp("abcdef", "abcxyz", 4)));
    printf("strchr: %td strrchr: %td strstr: %td\n", strchr(buf, 'o') - buf,
           strrchr(buf, 'o') - buf, strstr(buf, "world") - buf);
    printf("strspn: %zu strcspn: %zu\n", strspn("aabbcxyz", "abc"), strcspn("hello world", " "));

    strcpy(buf, "abcdefghij");
    memmove(buf + 3, buf, 7);
    printf("memmove up: %s\n", buf);
    strcpy(buf, "abcdefghij");
    memmove(buf, buf + 3, 8);
    printf("memmove down: %s\n", buf);
    memset(buf, '*', 5);
    buf[5] = '\0';
    printf("memset: %s memcmp: %d %d\n", buf, sign(memcmp("abc", "abd", 3)),
           sign(memcmp("abc", "abd", 2)));

    printf("strtol: %ld %ld %ld %ld\n", strtol("-12345", NULL, 10), strtol("ff", NULL, 16),
           strtol("0x7fffffff", NULL, 0), strtol("0777", NULL, 0));
    printf("strtoul: %lu atoi: %d\n", strtoul("18446744073709551615", NULL, 10), atoi("  -77z"));

    char words[] = "the quick,brown;;fox  jumps";
    int count = 0;
    printf("strtok:");
    for (char *t = strtok(words, " ,;"); t != NULL; t = strtok(NULL, " ,;"), count++)
        printf(" <%s>", t);
    printf(" (%d)\n", count);

    strcpy(buf, "Mixed Case 123");
    for (char *p = buf; *p; p++)
        *p = (char)(islower((unsigned char)*p) ? toupper((unsigned char)*p)
                                               : tolower((unsigned char)*p));
    printf("swapcase: %s\n", buf);

    size_t len = strlen(buf);
    for (size_t i = 0; i < len / 2; i++) {
        char t = buf[i];
        buf[i] = buf[len - 1 - i];
        buf[len - 1 - i] = t;
    }
    printf("reversed: %s\n", buf);

    int full = snprintf(buf, 8, "%s", "hello world");
    printf("snprintf truncates: %d \"%s\"\n", full, buf);
}

int main(int argc, char **argv)
{
    long n = 200 * guest_scale(argc, argv);
    formats();
    string_functions();

    uint64_t state = 0x853c49e6748fea9bu;
    uint64_t hash = 0xcbf29ce484222325u;
    size_t total = 0;
    char buf[128];
    for (long i = 0; i < n; i++) {
        int64_t v = (int64_t)xorshift64(&state);
        int len = snprintf(buf, sizeof buf, "%ld:%lx:%08" PRIx32 ":%-6d|%+5d", (long)v,
                           (unsigned long)v, (uint32_t)v, (int)(v % 1000), (int)(v >> 54));
        total += (size_t)len;
        hash = fnv1a(hash, buf);
    }
    printf("formatted %ld values, %zu characters, hash = %016" PRIx64 "\n", n, total, hash);
    return (int)(hash & 0x7f);
}
