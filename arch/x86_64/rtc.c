/*
 * CMOS RTC (MC146818) read at boot so that wall-clock time is right from the
 * application's first instruction. The chip updates once a second; reading
 * twice and comparing avoids a torn read across an update.
 */
#include "rtc.h"
#include <stdbool.h>
#include "cpu.h"

struct rtc_fields { uint8_t sec, min, hour, day, mon, year, century, regb; };

static uint8_t cmos(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

static int update_in_progress(void) { return cmos(0x0A) & 0x80; }

static void read_fields(struct rtc_fields *f)
{
    f->sec = cmos(0x00);
    f->min = cmos(0x02);
    f->hour = cmos(0x04);
    f->day = cmos(0x07);
    f->mon = cmos(0x08);
    f->year = cmos(0x09);
    f->century = cmos(0x32);
    f->regb = cmos(0x0B);
}

static unsigned bcd(uint8_t v) { return (v & 0x0F) + (v >> 4) * 10; }

uint64_t rtc_civil_to_unix(unsigned year, unsigned month, unsigned day,
                           unsigned hour, unsigned min, unsigned sec)
{
    /* Days from 1970-01-01 by the civil-from-days inverse (era of 400 years). */
    int y = (int)year - (month <= 2);
    int era = y / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned mp = (month + 9) % 12;
    unsigned doy = (153 * mp + 2) / 5 + day - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    return (uint64_t)days * 86400 + hour * 3600 + min * 60 + sec;
}

/* A missing chip's ports read all ones: a real one never has every bit of A
   and B set. Checked first, or the update-in-progress wait below would spin
   on its "set" bit: millions of trapped reads, 39 s under a software KVM. */
static bool rtc_missing(void) { return cmos(0x0A) == 0xFF && cmos(0x0B) == 0xFF; }

uint64_t rtc_read_unix(void)
{
    if (rtc_missing())
        return 0;
    struct rtc_fields a, b;
    for (int tries = 0; tries < 10; tries++) {
        for (int i = 0; i < 1000000 && update_in_progress(); i++)
            cpu_relax();
        read_fields(&a);
        read_fields(&b);
        if (__builtin_memcmp(&a, &b, sizeof a) == 0)
            break;
    }
    if (a.regb == 0xFF)
        return 0; /* no RTC on this machine */
    int binary = a.regb & 0x04;
    int pm = a.hour & 0x80;
    unsigned sec = binary ? a.sec : bcd(a.sec);
    unsigned min = binary ? a.min : bcd(a.min);
    unsigned hour = binary ? (a.hour & 0x7F) : bcd(a.hour & 0x7F);
    unsigned day = binary ? a.day : bcd(a.day);
    unsigned mon = binary ? a.mon : bcd(a.mon);
    unsigned year = binary ? a.year : bcd(a.year);
    unsigned century = (a.century && a.century != 0xFF) ? (binary ? a.century : bcd(a.century)) : 20;
    if (!(a.regb & 0x02)) /* 12-hour mode */
        hour = (hour % 12) + (pm ? 12 : 0);
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return 0;
    return rtc_civil_to_unix(century * 100 + year, mon, day, hour, min, sec);
}
