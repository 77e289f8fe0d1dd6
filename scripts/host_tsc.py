"""The host's TSC rate in kHz, for guests that read the host's TSC (QEMU TCG).

TCG guests see the host TSC unscaled, so a guest told this rate need not
calibrate (Shoal's tsc_khz, Linux's tsc_early_khz). Measured once per host
boot against CLOCK_MONOTONIC_RAW over 200 ms and cached in the temporary
directory; SHOAL_TSC_KHZ overrides it. None when it cannot be measured
(not x86_64, or executable memory refused): the guest then calibrates.
"""
import ctypes
import mmap
import os
import platform
import tempfile
import time

# rdtsc; shl rdx, 32; or rax, rdx; ret
RDTSC_CODE = bytes([0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3])
WINDOW_S = 0.2


def _rdtsc_function():
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(RDTSC_CODE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
    fn = ctypes.CFUNCTYPE(ctypes.c_uint64)(addr)
    fn.page = page          # keep the mapping alive as long as the function
    return fn


def _sample(rdtsc):
    """(ns, tsc) read as close together as we can: the tightest of a few tries."""
    best = None
    for _ in range(20):
        a = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
        t = rdtsc()
        b = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2, t)
    return best[1], best[2]


def measure_khz():
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        rdtsc = _rdtsc_function()
    except (OSError, ValueError, TypeError, PermissionError):
        return None
    ns0, tsc0 = _sample(rdtsc)
    time.sleep(WINDOW_S)
    ns1, tsc1 = _sample(rdtsc)
    return round((tsc1 - tsc0) * 1e6 / (ns1 - ns0))


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def host_tsc_khz():
    env = os.environ.get("SHOAL_TSC_KHZ")
    if env:
        return int(env) if env.isdigit() else None
    boot = _boot_id()
    cache = os.path.join(tempfile.gettempdir(), f"shoal-tsc-khz-{os.getuid()}")
    try:
        with open(cache) as f:
            cached_boot, khz = f.read().split()
        if boot and cached_boot == boot:
            return int(khz)
    except (OSError, ValueError):
        pass
    khz = measure_khz()
    if khz and boot:
        tmp = f"{cache}.{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                f.write(f"{boot} {khz}\n")
            os.replace(tmp, cache)
        except OSError:
            pass
    return khz


if __name__ == "__main__":
    print(host_tsc_khz())
