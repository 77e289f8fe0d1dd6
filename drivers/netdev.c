/* The table of network devices (filled at boot, read-only afterwards). */
#include "netdev.h"

static struct netdev *devices[NETDEV_MAX];
static unsigned ndevices;

void netdev_register(struct netdev *d)
{
    if (ndevices < NETDEV_MAX)
        devices[ndevices++] = d;
}

struct netdev *netdev_get(unsigned index) { return index < ndevices ? devices[index] : 0; }
unsigned netdev_count(void) { return ndevices; }
