/*
 * Minimal unit-test support. A test file includes the kernel .c files it
 * tests (pure logic, no hardware), defines test functions with TEST(), and
 * ends with TEST_MAIN(). The program prints one line per test and exits
 * non-zero when any check failed.
 */
#ifndef TESTS_UNIT_CHECK_H
#define TESTS_UNIT_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                              \
    do {                                                                         \
        check_count++;                                                           \
        if (!(cond)) {                                                           \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);          \
        check_count++;                                                           \
        if (check_a_ != check_b_) {                                              \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",  \
                    __FILE__, __LINE__, #a, check_a_, #b, check_b_);             \
        }                                                                        \
    } while (0)

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };
static struct test_case test_cases[256];
static int test_case_count;

#define TEST(tname_)                                                               \
    static void tname_(void);                                                      \
    __attribute__((constructor)) static void register_##tname_(void)               \
    {                                                                            \
        if (test_case_count == (int)(sizeof test_cases / sizeof test_cases[0])) {  \
            printf("FAIL too-many-tests\n");                                     \
            exit(1);                                                             \
        }                                                                        \
        test_cases[test_case_count].name = #tname_;                                \
        test_cases[test_case_count++].fn = tname_;                                 \
    }                                                                            \
    static void tname_(void)

#define TEST_MAIN()                                                              \
    int main(void)                                                               \
    {                                                                            \
        int failed_tests = 0;                                                    \
        /* Declared up front, each result flushed: a crash loses no result and   \
           the runner sees which tests never reported. */                       \
        for (int i = 0; i < test_case_count; i++)                                \
            printf("DECLARE %s\n", test_cases[i].name);                          \
        fflush(stdout);                                                          \
        for (int i = 0; i < test_case_count; i++) {                              \
            int before = check_failures;                                         \
            test_cases[i].fn();                                                  \
            int ok = check_failures == before;                                   \
            failed_tests += !ok;                                                 \
            printf("%s %s\n", ok ? "PASS" : "FAIL", test_cases[i].name);         \
            fflush(stdout);                                                      \
        }                                                                        \
        printf("%d passed, %d failed\n", test_case_count - failed_tests, failed_tests); \
        return failed_tests ? 1 : 0;                                             \
    }

#endif
