/* lwIP's platform header for Shoal: freestanding x86_64, the kernel's console and panic. */
#ifndef SHOAL_LWIP_ARCH_CC_H
#define SHOAL_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

/* No hosted inttypes.h or ctype.h in a freestanding build: lwIP's own replacements. */
#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_CTYPE_H    1
#define X8_F  "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "zu"

#define BYTE_ORDER LITTLE_ENDIAN
#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))

void shoal_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void shoal_lwip_assert(const char *msg, const char *file, int line);
uint32_t shoal_lwip_rand(void);

#define LWIP_PLATFORM_DIAG(x) do { shoal_print x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) shoal_lwip_assert((x), __FILE__, __LINE__)

#endif
