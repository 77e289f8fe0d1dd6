#include "fw_cfg.h"
#include "cpu.h"

#define FW_CFG_PORT_SEL     0x510
#define FW_CFG_PORT_DATA    0x511
#define FW_CFG_SIGNATURE    0x00
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_FILE_DIR     0x19
#define FW_CFG_NAME_LEN     56

/* One directory entry; numbers are big-endian. */
struct fw_cfg_file_entry {
    uint32_t size;
    uint16_t select;
    uint16_t reserved;
    char name[FW_CFG_NAME_LEN];
};

/* Continues reading the item selected last. */
static void read_more(void *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = inb(FW_CFG_PORT_DATA);
}

static void read_item(uint16_t key, void *buf, size_t n)
{
    outw(FW_CFG_PORT_SEL, key);
    read_more(buf, n);
}

static bool present(void)
{
    char sig[4];
    read_item(FW_CFG_SIGNATURE, sig, 4);
    return sig[0] == 'Q' && sig[1] == 'E' && sig[2] == 'M' && sig[3] == 'U';
}

static bool same_name(const char *a, const char *b)
{
    size_t i = 0;
    for (; i < FW_CFG_NAME_LEN && a[i] && a[i] == b[i]; i++)
        ;
    return i == FW_CFG_NAME_LEN || a[i] == b[i];
}

bool fw_cfg_file(const char *name, char *buf, size_t size)
{
    if (size == 0 || !present())
        return false;
    uint32_t count;
    read_item(FW_CFG_FILE_DIR, &count, 4);
    count = __builtin_bswap32(count);
    for (uint32_t i = 0; i < count && i < 4096; i++) {
        struct fw_cfg_file_entry e;
        read_more(&e, sizeof e);
        if (!same_name(e.name, name))
            continue;
        uint32_t len = __builtin_bswap32(e.size);
        size_t n = len < size - 1 ? len : size - 1;
        read_item(__builtin_bswap16(e.select), buf, n);
        buf[n] = '\0';
        return true;
    }
    return false;
}

bool fw_cfg_cmdline(char *buf, size_t size)
{
    if (size == 0 || !present())
        return false;
    uint32_t len;
    read_item(FW_CFG_CMDLINE_SIZE, &len, 4);
    if (len == 0)
        return false;
    read_item(FW_CFG_CMDLINE_DATA, buf, len < size ? len : size);
    buf[(len < size ? len : size) - 1] = '\0';
    return buf[0] != '\0';
}
