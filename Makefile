# Shoal: one entry point.
#   make [APP=hello]          build build/$(APP).elf
#   make run APP=hello SMP=4  boot it under QEMU
#   make test                 unit + integration tests ("N passed, N failed, N skipped")
#   make unit                 host unit tests only
#   make linux APP=echo       the app as a Linux program: $(BUILD)/linux/$(APP)
#   make demo                 the memcached image in a namespace, answering real clients (root)
#   make soak                 500 boots, each checked on every shard from its first packet (root)
#   make bench                benchmarks (not pass/fail; the virtio one needs root and downloads a Linux guest)
#   make APP=memcached NETSTACK=lwip   the app over lwIP 2.1.3 instead of our stack: $(BUILD)/memcached-lwip.elf
#   make lwip-images          every lwIP baseline image (fetches lwIP's Debian sources first; see runtime/lwip/)

APP      ?= hello
SMP      ?= 1
DEMO_SMP ?= 2
MEM      ?= 256
MACHINE  ?= microvm
CMDLINE  ?=
BUILD    ?= build
NETSTACK ?=
# NETSTACK=lwip: the image's network stack is lwIP (runtime/lwip/), named APP-lwip.elf.
IMAGE    := $(APP)$(if $(filter lwip,$(NETSTACK)),-lwip)
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

KERNEL_C   := $(wildcard arch/x86_64/*.c kernel/*.c drivers/*.c drivers/virtio/*.c net/*.c) runtime/shoal_kernel.c runtime/shoal_tcp.c \
              runtime/shoal_frame.c
KERNEL_S   := $(wildcard boot/*.S arch/x86_64/*.S)
KERNEL_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(KERNEL_C) $(KERNEL_S))
APPS       := $(notdir $(patsubst %/,%,$(wildcard apps/*/)))
APP_OBJ     = $(patsubst %,$(BUILD)/obj/%.o,$(wildcard apps/$(1)/*.c))

.PHONY: all run test unit bench clean images demo soak FORCE
all: $(BUILD)/$(IMAGE).elf

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

run: $(BUILD)/$(IMAGE).elf
	$(PYTHON) scripts/run.py $< --smp $(SMP) --mem $(MEM) --machine $(MACHINE)

# The same app as an ordinary Linux program (runtime/linux/: one pinned thread per core, SO_REUSEPORT).
#   make linux APP=echo  ->  $(BUILD)/linux/echo; run it directly, e.g. SHOAL_SHARDS=4 build/linux/echo -p 7007
LINUX_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread
# The runtime's sources for a Linux program (tests that build their own programs print them with linux-runtime-src).
LINUX_RT_SRC := $(wildcard runtime/linux/*.c) kernel/timer_wheel.c drivers/blkdev.c drivers/netbuf.c runtime/shoal_frame.c
LINUX_SRC     = $(wildcard apps/$(APP)/*.c) $(LINUX_RT_SRC)
.PHONY: linux linux-runtime-src
linux-runtime-src:
	@echo $(LINUX_RT_SRC)
linux: $(BUILD)/linux/$(APP)
$(BUILD)/linux/$(APP): $(LINUX_SRC) $(wildcard apps/$(APP)/*.h runtime/linux/*.h) runtime/shoal.h \
		kernel/task.h kernel/timer_wheel.h net/tcp.h drivers/netdev.h Makefile
	@test -n "$(wildcard apps/$(APP)/*.c)" || { echo "no app apps/$(APP)"; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(LINUX_CFLAGS) $(LINUX_SRC) -o $@

demo:
	scripts/demo-memcached.sh $(DEMO_SMP)

soak: images
	$(PYTHON) tests/integration/soak.py $(if $(BOOTS),--boots $(BOOTS))

unit:
	$(PYTHON) tests/run_tests.py --unit-only

test: images
	$(PYTHON) tests/run_tests.py

bench: images
	$(PYTHON) tests/bench/boot.py
	$(PYTHON) tests/bench/virtio.py
	$(PYTHON) tests/bench/tcp.py
	$(PYTHON) tests/bench/memcached.py
	$(PYTHON) tests/bench/compare.py

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/obj-lwip -name '*.d' 2>/dev/null)

# Flags live here: objects rebuild when it changes.
$(BUILD)/obj/%.o: Makefile

# --- The lwIP baseline (issue 6): kernel + runtime/lwip + lwIP 2.1.3 core + the app, unchanged. ---
# lwIP's sources come from Debian's source package (scripts/fetch-lwip.sh, into an ignored folder)
# and are never part of the tree; they build with the kernel's flags, -Werror included. `make images`
# does not need them.
LWIP_DIR    ?= build/lwip-src
LWIP_STAMP  := $(LWIP_DIR)/src/core/tcp.c
LWIP_CORE   := core/def.c core/inet_chksum.c core/init.c core/ip.c core/mem.c core/memp.c core/netif.c \
               core/pbuf.c core/stats.c core/sys.c core/tcp.c core/tcp_in.c core/tcp_out.c core/timeouts.c \
               core/udp.c core/ipv4/etharp.c core/ipv4/icmp.c core/ipv4/ip4.c core/ipv4/ip4_addr.c \
               core/ipv4/ip4_frag.c netif/ethernet.c
LWIP_OBJ    := $(patsubst %,$(BUILD)/obj-lwip/src/%.o,$(LWIP_CORE))
LWIP_RT_OBJ := $(patsubst %,$(BUILD)/obj-lwip/%.o,$(wildcard runtime/lwip/*.c))
LWIP_CFLAGS := -Iruntime/lwip -I$(LWIP_DIR)/src/include
LWIP_APPS   ?= memcached echo
# What runtime/lwip replaces is made weak in copies of the kernel objects that define it, so the
# kernel's sources stay as they are and its IP stack is never started (net_start is lwIP's).
LWIP_WEAK   := net_start shoal_net_info shoal_net_stats shoal_udp_bind shoal_udp_send
LWIP_WEAKENED := net/net_kernel.c.o runtime/shoal_kernel.c.o
LWIP_KERNEL_OBJ := $(filter-out $(BUILD)/obj/runtime/shoal_tcp.c.o $(addprefix $(BUILD)/obj/,$(LWIP_WEAKENED)),$(KERNEL_OBJ)) \
                   $(addprefix $(BUILD)/obj-lwip/weak/,$(LWIP_WEAKENED))

.PHONY: lwip-images lwip-fetch
lwip-images: $(foreach a,$(LWIP_APPS),$(BUILD)/$(a)-lwip.elf)
lwip-fetch: $(LWIP_STAMP)

$(LWIP_STAMP):
	scripts/fetch-lwip.sh $(LWIP_DIR)
$(filter-out $(LWIP_STAMP),$(addprefix $(LWIP_DIR)/src/,$(LWIP_CORE))): | $(LWIP_STAMP)

$(BUILD)/obj-lwip/src/%.c.o: $(LWIP_DIR)/src/%.c | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) $(LWIP_CFLAGS) -c $< -o $@

$(BUILD)/obj-lwip/runtime/lwip/%.c.o: runtime/lwip/%.c | $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) $(LWIP_CFLAGS) -c $< -o $@

$(BUILD)/obj-lwip/weak/%.o: $(BUILD)/obj/%.o
	@mkdir -p $(dir $@)
	objcopy $(addprefix -W ,$(LWIP_WEAK)) $< $@

$(BUILD)/lwip/libkernel.a: $(LWIP_KERNEL_OBJ) $(LWIP_OBJ) $(LWIP_RT_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/lwip/app-%.a: $(BUILD)/app-%.a
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/%-lwip.elf: $(BUILD)/lwip/libkernel.a $(BUILD)/lwip/app-%.a scripts/build-image.py boot/linker.ld FORCE
	$(PYTHON) scripts/build-image.py --app $* --build-dir $(BUILD)/lwip $(if $(CMDLINE),--cmdline "$(CMDLINE)") -o $@

$(BUILD)/obj-lwip/%.o: Makefile
.PRECIOUS: $(BUILD)/lwip/app-%.a
