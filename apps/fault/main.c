/*
 * fault: crashes on purpose so tests can check that a crash explains itself
 * (exception, registers, a backtrace naming these functions) and that the
 * VM exits with a non-zero status.
 */
#include "../../runtime/shoal.h"

__attribute__((noinline)) void fault_deref_null(volatile int *p)
{
    *p = 42;
}

__attribute__((noinline)) void fault_caller(void)
{
    fault_deref_null((volatile int *)0);
    __asm__ volatile("" ::: "memory"); /* keep this frame: no tail call */
}

void app_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (shard_id() != 0)
        return;
    shoal_print("fault: dereferencing NULL in fault_deref_null\n");
    fault_caller();
}
