/* Flow classification reads frames straight off the wire: any bytes, any length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/toeplitz.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte past the frame is caught. */
    uint8_t *f = malloc(size ? size : 1);
    memcpy(f, data, size);
    uint32_t h1 = 0, h2 = 0;
    int ok = flow_hash_frame(f, (uint32_t)size, &h1);
    if (ok != flow_hash_frame(f, (uint32_t)size, &h2) || (ok && h1 != h2))
        abort();
    if (ok && flow_shard(h1, 7) >= 7)
        abort();
    free(f);
    return 0;
}
