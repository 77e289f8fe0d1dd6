/* The Internet checksum (RFC 1071): one's-complement sums, partial and folded. */
#ifndef NET_CHECKSUM_H
#define NET_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/* Adds data (big-endian 16-bit words, an odd last byte padded with zero) to sum. */
uint32_t csum_add(uint32_t sum, const void *data, size_t len);
/* Folds to 16 bits (not inverted). */
static inline uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)sum;
}
/* The checksum field's value: inverted fold. A result of 0 is valid data. */
static inline uint16_t csum_finish(uint32_t sum) { return (uint16_t)~csum_fold(sum); }
/* Sum of the IPv4 pseudo-header (addresses host order). */
static inline uint32_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len)
{
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + len;
}
#endif
