/*
 * fault: crashes on purpose so tests can check that a crash explains itself
 * (exception, registers, a backtrace naming these functions) and that the
 * VM exits with a non-zero status. The first argument picks the crash:
 *   null    (default) write through a NULL pointer
 *   stack   unbounded recursion into the guard page under the stack
 *   nx      jump into a data buffer (no-execute)
 *   rodata  write to a string literal (read-only)
 */
#include "../../runtime/shoal.h"

static const char message[] = "read-only";
static uint8_t data_buffer[16] = { 0xC3 }; /* "ret", should it ever run */

__attribute__((noinline)) void fault_deref_null(volatile int *p)
{
    *p = 42;
}

__attribute__((noinline)) void fault_caller(void)
{
    fault_deref_null((volatile int *)0);
    __asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
}

/* Stops only at an absurd depth, so the compiler accepts it; the guard page stops it first. */
__attribute__((noinline)) unsigned fault_recurse(unsigned depth)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth > 100000000u)
        return pad[0];
    return fault_recurse(depth + 1) + pad[0];
}

__attribute__((noinline)) void fault_exec_data(void)
{
    void (*fn)(void) = (void (*)(void))(uintptr_t)data_buffer;
    fn();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void fault_write_rodata(void)
{
    volatile char *p = (volatile char *)(uintptr_t)message;
    p[0] = 'X';
}

void app_main(int argc, char **argv)
{
    if (shard_id() != 0)
        return;
    const char *mode = argc > 1 ? argv[1] : "null";
    shoal_print("fault: mode %s\n", mode);
    if (!strcmp(mode, "stack"))
        fault_recurse(0);
    else if (!strcmp(mode, "nx"))
        fault_exec_data();
    else if (!strcmp(mode, "rodata"))
        fault_write_rodata();
    else
        fault_caller();
    shoal_print("fault: survived mode %s\n", mode);
    shoal_exit(0);
}
