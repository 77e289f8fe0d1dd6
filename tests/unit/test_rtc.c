/* CMOS date → Unix time conversion (the hardware read itself is covered by booting). */
#include "check.h"
#include <time.h>

/* rtc.c needs port I/O only in rtc_read_unix(); give it host stubs. */
#define ARCH_CPU_H
#include <stdint.h>
static inline void outb(uint16_t port, uint8_t v) { (void)port; (void)v; }
static inline uint8_t inb(uint16_t port) { (void)port; return 0xFF; }
static inline void cpu_relax(void) {}
#include "../../arch/x86_64/rtc.c"

TEST(epoch_and_known_dates)
{
    CHECK_EQ(rtc_civil_to_unix(1970, 1, 1, 0, 0, 0), 0);
    CHECK_EQ(rtc_civil_to_unix(2000, 2, 29, 12, 0, 0), 951825600);
    CHECK_EQ(rtc_civil_to_unix(2026, 11, 23, 13, 21, 34), 1795440094);
    CHECK_EQ(rtc_civil_to_unix(2038, 1, 19, 3, 14, 8), 2147483648LL);
}

TEST(matches_timegm_every_day_for_two_centuries)
{
    long long first_mismatch = -1;
    for (long long t = 0; t < 200LL * 365 * 86400 && first_mismatch < 0; t += 86400 + 3661) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        uint64_t got = rtc_civil_to_unix((unsigned)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday,
                                         (unsigned)tm.tm_hour, (unsigned)tm.tm_min, (unsigned)tm.tm_sec);
        if ((long long)got != t)
            first_mismatch = t;
    }
    CHECK_EQ(first_mismatch, -1);
}

TEST(missing_rtc_reads_as_zero)
{
    CHECK_EQ(rtc_read_unix(), 0);
}

TEST_MAIN()
