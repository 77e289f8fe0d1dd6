/*
 * Interrupt and exception dispatch. Device-style vectors only wake the
 * reactor. Every exception is fatal: the console gets the exception, all
 * registers and a backtrace symbolised from the image's own symbol table,
 * and the VM exits with a non-zero status. A crash must explain itself.
 */
#include <stdbool.h>
#include "trap.h"
#include "apic.h"
#include "cpu.h"
#include "layout.h"
#include "irq.h"
#include "shutdown.h"
#include "../../kernel/console.h"
#include "../../kernel/ksyms.h"

extern uint8_t cpu_stacks[];

static const char *const exception_names[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
    "invalid opcode", "device not available", "double fault", "coprocessor overrun",
    "invalid TSS", "segment not present", "stack fault", "general protection",
    "page fault", "reserved", "x87 FP error", "alignment check", "machine check",
    "SIMD FP error", "virtualization", "control protection", "reserved", "reserved",
    "reserved", "reserved", "reserved", "reserved", "hypervisor injection",
    "VMM communication", "security", "reserved",
};

static int crash_in_progress;

static unsigned current_cpu(void)
{
    /* GS is not yet set up very early in boot: that is CPU 0. */
    if (!rdmsr(MSR_GS_BASE))
        return 0;
    unsigned id;
    __asm__ volatile("movl %%gs:8, %0" : "=r"(id));
    return id;
}

/* Inside one of this CPU's stacks, never in a guard page: safe to read while crashing. */
static int stack_readable(uint64_t addr, uint64_t len)
{
    uint64_t lo = (uint64_t)cpu_stacks + (uint64_t)current_cpu() * STACK_BLOCK_SIZE;
    if (addr < lo || addr + len > lo + STACK_BLOCK_SIZE || (addr & 7))
        return 0;
    uint64_t a = addr - lo, b = a + len;
    return (a >= STACK_KERNEL && b <= STACK_KERNEL_TOP) ||
           (a >= STACK_IST_DF && b <= STACK_DF_TOP) ||
           (a >= STACK_IST_NMI && b <= STACK_NMI_TOP);
}

static void print_symbol(const char *label, uint64_t addr)
{
    uint64_t off = 0;
    const char *name = ksym_lookup(addr, &off);
    if (name)
        crash_printf("%s0x%016lx  %s+0x%lx\n", label, addr, name, off);
    else
        crash_printf("%s0x%016lx  ?\n", label, addr);
}

void trap_print_backtrace(uint64_t rip, uint64_t rbp)
{
    crash_printf("backtrace:\n");
    print_symbol("  ", rip);
    for (int depth = 0; depth < 32; depth++) {
        if (!stack_readable(rbp, 16))
            return;
        uint64_t *frame = (uint64_t *)rbp;
        if (!frame[1])
            return;
        print_symbol("  ", frame[1] - 1);
        if (frame[0] <= rbp)
            return;
        rbp = frame[0];
    }
}

/* A fault before a function's prologue (leaf or shrink-wrapped code) leaves its
   caller only as the return address on top of the stack, not in the RBP chain. */
static void print_stack_top(const struct trap_frame *f)
{
    extern char __text_start[], __text_end[];
    if (!stack_readable(f->rsp, 8)) {
        crash_printf("stack pointer 0x%lx is outside this CPU's stacks (overflow into a guard page?)\n", f->rsp);
        return;
    }
    uint64_t ret = *(uint64_t *)f->rsp;
    if (ret > (uint64_t)__text_start && ret <= (uint64_t)__text_end)
        print_symbol("return address on stack top: ", ret - 1);
}

static void print_registers(const struct trap_frame *f)
{
    crash_printf("RIP %016lx RSP %016lx RFLAGS %016lx\n", f->rip, f->rsp, f->rflags);
    crash_printf("RAX %016lx RBX %016lx RCX %016lx RDX %016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
    crash_printf("RSI %016lx RDI %016lx RBP %016lx R8  %016lx\n", f->rsi, f->rdi, f->rbp, f->r8);
    crash_printf("R9  %016lx R10 %016lx R11 %016lx R12 %016lx\n", f->r9, f->r10, f->r11, f->r12);
    crash_printf("R13 %016lx R14 %016lx R15 %016lx\n", f->r13, f->r14, f->r15);
    crash_printf("CS %04lx SS %04lx CR0 %016lx CR2 %016lx CR3 %016lx CR4 %016lx\n",
                 f->cs, f->ss, read_cr0(), read_cr2(), read_cr3(), read_cr4());
}

static void fatal_exception(struct trap_frame *f)
{
    /* crash_in_progress holds the crashing CPU's id + 1, claimed atomically. */
    int expected = 0, me = (int)current_cpu() + 1;
    if (!__atomic_compare_exchange_n(&crash_in_progress, &expected, me, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        /* A fault while this CPU reports a crash: give up on the report, not on exiting. */
        if (expected == me) {
            crash_printf("\n*** nested exception %lu while reporting a crash\n", f->vector);
            machine_exit(EXIT_CRASH);
        }
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    unsigned v = (unsigned)f->vector;
    crash_printf("\n*** EXCEPTION %u (%s) on cpu %u, error code 0x%lx\n", v,
                 v < 32 ? exception_names[v] : "?", current_cpu(), f->error);
    if (v == 14)
        crash_printf("page fault at address 0x%lx (%s, %s)\n", read_cr2(),
                     (f->error & 0x10) ? "instruction fetch" : (f->error & 2) ? "write" : "read",
                     (f->error & 1) ? "protection violation" : "page not present");
    print_symbol("faulting instruction: ", f->rip);
    print_registers(f);
    print_stack_top(f);
    trap_print_backtrace(f->rip, f->rbp);
    crash_printf("*** cpu %u halted, exiting with status %d\n", current_cpu(), EXIT_CRASH);
    machine_exit(EXIT_CRASH);
}

void trap_dispatch(struct trap_frame *f)
{
    switch (f->vector) {
    case VEC_IRQ_BASE ... VEC_IRQ_BASE + VEC_IRQ_COUNT - 1:
        irq_dispatch((unsigned)f->vector);
        lapic_eoi();
        return;
    case VEC_TIMER:
    case VEC_WAKE:
    case VEC_QUEUE:
        lapic_eoi();
        reactor_irq((unsigned)f->vector);
        return;
    case VEC_SPURIOUS:
        return;
    case 2:
        /* Another CPU's crash stops the others with an NMI. */
        if (__atomic_load_n(&crash_in_progress, __ATOMIC_ACQUIRE)) {
            for (;;)
                __asm__ volatile("cli; hlt");
        }
        fatal_exception(f);
        return;
    default:
        fatal_exception(f);
    }
}
