/*
 * libxenstore benchmark, the C reference for the Go client's benchmark
 * (xenstore/bench_test.go). One connection (xs_open, so XENSTORED_PATH),
 * one synchronous caller.
 *
 *   xsbench read|write|txn OPS KEYS PREFIX
 *
 * write: xs_write to KEYS rotating keys PREFIX/k<i>;
 * read:  xs_read of the same keys (written first, untimed), checking values;
 * txn:   xs_transaction_start + xs_write + xs_transaction_end, retried on EAGAIN.
 * Prints the timed loop's duration in nanoseconds on stdout.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    struct xs_handle *h;
    char path[256], val[64];
    long ops, keys, i;
    long long start;
    const char *mode, *prefix;

    if (argc != 5) {
        fprintf(stderr, "usage: xsbench read|write|txn OPS KEYS PREFIX\n");
        return 2;
    }
    mode = argv[1];
    ops = atol(argv[2]);
    keys = atol(argv[3]);
    prefix = argv[4];
    if (keys <= 0)
        keys = 1;
    h = xs_open(0);
    if (!h) {
        perror("xs_open");
        return 1;
    }
    if (strcmp(mode, "read") == 0) {
        for (i = 0; i < keys; i++) {
            snprintf(path, sizeof(path), "%s/k%ld", prefix, i);
            snprintf(val, sizeof(val), "value-%ld", i);
            if (!xs_write(h, XBT_NULL, path, val, strlen(val))) {
                perror("xs_write");
                return 1;
            }
        }
    }
    start = now_ns();
    for (i = 0; i < ops; i++) {
        long k = i % keys;
        snprintf(path, sizeof(path), "%s/k%ld", prefix, k);
        if (strcmp(mode, "write") == 0) {
            snprintf(val, sizeof(val), "value-%ld", k);
            if (!xs_write(h, XBT_NULL, path, val, strlen(val))) {
                perror("xs_write");
                return 1;
            }
        } else if (strcmp(mode, "read") == 0) {
            unsigned int len;
            char *v = xs_read(h, XBT_NULL, path, &len);
            snprintf(val, sizeof(val), "value-%ld", k);
            if (!v || len != strlen(val) || memcmp(v, val, len) != 0) {
                fprintf(stderr, "read %s: bad value\n", path);
                return 1;
            }
            free(v);
        } else if (strcmp(mode, "txn") == 0) {
            for (;;) {
                xs_transaction_t t = xs_transaction_start(h);
                if (t == XBT_NULL) {
                    perror("xs_transaction_start");
                    return 1;
                }
                if (!xs_write(h, t, path, "t", 1)) {
                    perror("xs_write");
                    return 1;
                }
                if (xs_transaction_end(h, t, false))
                    break;
                if (errno != EAGAIN) {
                    perror("xs_transaction_end");
                    return 1;
                }
            }
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
    }
    printf("%lld\n", now_ns() - start);
    xs_close(h);
    return 0;
}
