#include "fw_cfg.h"
#include "cpu.h"

#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511
#define FW_CFG_SIGNATURE  0x00
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15

static void read_item(uint16_t key, void *buf, size_t n)
{
    outw(FW_CFG_PORT_SEL, key);
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = inb(FW_CFG_PORT_DATA);
}

bool fw_cfg_cmdline(char *buf, size_t size)
{
    char sig[4];
    read_item(FW_CFG_SIGNATURE, sig, 4);
    if (sig[0] != 'Q' || sig[1] != 'E' || sig[2] != 'M' || sig[3] != 'U' || size == 0)
        return false;
    uint32_t len;
    read_item(FW_CFG_CMDLINE_SIZE, &len, 4);
    if (len == 0)
        return false;
    read_item(FW_CFG_CMDLINE_DATA, buf, len < size ? len : size);
    buf[(len < size ? len : size) - 1] = '\0';
    return buf[0] != '\0';
}
