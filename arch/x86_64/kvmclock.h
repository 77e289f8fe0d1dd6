#ifndef ARCH_KVMCLOCK_H
#define ARCH_KVMCLOCK_H
#include <stdbool.h>
#include <stdint.h>

/* KVM's paravirtual clock ABI (Documentation/virt/kvm/x86/msr.rst), shared with Xen. */
struct pvclock_vcpu_time_info {
    uint32_t version;         /* odd while the hypervisor writes */
    uint32_t pad0;
    uint64_t tsc_timestamp;   /* TSC when system_time was taken */
    uint64_t system_time;     /* ns since the VM's clock zero */
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
} __attribute__((packed));

struct pvclock_wall_clock {
    uint32_t version;
    uint32_t sec;             /* unix time at system_time zero */
    uint32_t nsec;
} __attribute__((packed));

/* What kvmclock told the BSP at boot: all 0 when it is absent. */
struct kvmclock_reading {
    uint64_t tsc_hz;          /* the guest TSC's rate as KVM scales it */
    uint64_t unix_ns;         /* wall clock at TSC value tsc */
    uint64_t tsc;
};

/* Detects KVM's clock (CPUID leaf 0x40000001), reads it once on the calling
   CPU and unregisters its page again. False without kvmclock. */
bool kvmclock_read(struct kvmclock_reading *out);

/* Pure arithmetic, exposed for unit tests. */
uint64_t pvclock_scale(uint64_t tsc_delta, uint32_t mul, int8_t shift);
uint64_t pvclock_tsc_hz(uint32_t mul, int8_t shift);
uint64_t pvclock_unix_ns(const struct pvclock_wall_clock *wall, const struct pvclock_vcpu_time_info *t,
                         uint64_t tsc);
#endif
