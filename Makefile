# Shoal: one entry point.
#   make [APP=hello]          build build/$(APP).elf
#   make run APP=hello SMP=4  boot it under QEMU
#   make test                 unit + integration tests ("N passed, N failed")
#   make unit                 host unit tests only
#   make linux APP=echo       the app as a Linux program: $(BUILD)/linux/$(APP)
#   make demo                 the memcached image in a namespace, answering real clients (root)
#   make bench                benchmarks (not pass/fail; the virtio one needs root and downloads a Linux guest)

APP      ?= hello
SMP      ?= 1
DEMO_SMP ?= 2
MEM      ?= 256
MACHINE  ?= microvm
CMDLINE  ?=
BUILD    ?= build
CC       := gcc
AR       := ar
PYTHON   := /usr/bin/python3

COMMON_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-stack-protector \
                 -fno-pic -fno-pie -mno-red-zone -fno-omit-frame-pointer \
                 -mno-omit-leaf-frame-pointer -fno-asynchronous-unwind-tables \
                 -fno-strict-aliasing -fno-optimize-sibling-calls -mcmodel=small -MMD -MP
# The kernel never touches vector registers, so interrupts need not save them.
KERNEL_CFLAGS := $(COMMON_CFLAGS) -mgeneral-regs-only
# Applications may use SSE/AVX freely.
APP_CFLAGS    := $(COMMON_CFLAGS)

KERNEL_C   := $(wildcard arch/x86_64/*.c kernel/*.c drivers/*.c drivers/virtio/*.c net/*.c) runtime/shoal_kernel.c runtime/shoal_tcp.c
KERNEL_S   := $(wildcard boot/*.S arch/x86_64/*.S)
KERNEL_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(KERNEL_C) $(KERNEL_S))
APPS       := $(notdir $(patsubst %/,%,$(wildcard apps/*/)))
APP_OBJ     = $(patsubst %,$(BUILD)/obj/%.o,$(wildcard apps/$(1)/*.c))

.PHONY: all run test unit bench clean images demo FORCE
all: $(BUILD)/$(APP).elf

$(BUILD)/obj/apps/%.c.o: apps/%.c
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.c.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -D__ASSEMBLY__ -c $< -o $@

$(BUILD)/libkernel.a: $(KERNEL_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

define app_rules
$(BUILD)/app-$(1).a: $(call APP_OBJ,$(1))
	@rm -f $$@
	$(AR) rcs $$@ $$^
$(BUILD)/$(1).elf: $(BUILD)/libkernel.a $(BUILD)/app-$(1).a scripts/build-image.py boot/linker.ld FORCE
	$(PYTHON) scripts/build-image.py --app $(1) --build-dir $(BUILD) $(if $(CMDLINE),--cmdline "$(CMDLINE)") -o $$@
endef
$(foreach a,$(APPS),$(eval $(call app_rules,$(a))))

images: $(foreach a,$(APPS),$(BUILD)/$(a).elf)

run: $(BUILD)/$(APP).elf
	$(PYTHON) scripts/run.py $< --smp $(SMP) --mem $(MEM) --machine $(MACHINE)

# The same app as an ordinary Linux program (runtime/linux/: one pinned thread per core, SO_REUSEPORT).
#   make linux APP=echo  ->  $(BUILD)/linux/echo; run it directly, e.g. SHOAL_SHARDS=4 build/linux/echo -p 7007
LINUX_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread
LINUX_SRC     = $(wildcard apps/$(APP)/*.c) $(wildcard runtime/linux/*.c) kernel/timer_wheel.c
.PHONY: linux
linux: $(BUILD)/linux/$(APP)
$(BUILD)/linux/$(APP): $(LINUX_SRC) $(wildcard apps/$(APP)/*.h runtime/linux/*.h) runtime/shoal.h \
		kernel/task.h kernel/timer_wheel.h net/tcp.h Makefile
	@test -n "$(wildcard apps/$(APP)/*.c)" || { echo "no app apps/$(APP)"; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(LINUX_CFLAGS) $(LINUX_SRC) -o $@

demo:
	scripts/demo-memcached.sh $(DEMO_SMP)

unit:
	$(PYTHON) tests/run_tests.py --unit-only

test: images
	$(PYTHON) tests/run_tests.py

bench: images
	$(PYTHON) tests/bench/boot.py
	$(PYTHON) tests/bench/virtio.py
	$(PYTHON) tests/bench/tcp.py
	$(PYTHON) tests/bench/memcached.py

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Flags live here: objects rebuild when it changes.
$(BUILD)/obj/%.o: Makefile
