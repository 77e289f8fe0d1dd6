#ifndef ARCH_RTC_H
#define ARCH_RTC_H
#include <stdint.h>
/* Unix time in seconds from the CMOS real-time clock; 0 if it cannot be read. */
uint64_t rtc_read_unix(void);
/* Pure conversion, exposed for unit tests. */
uint64_t rtc_civil_to_unix(unsigned year, unsigned month, unsigned day,
                           unsigned hour, unsigned min, unsigned sec);
#endif
