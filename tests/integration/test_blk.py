"""virtio-blk through the blkcheck app: data written and flushed by one boot is read back
intact by the next, from every shard; small, read-only and missing disks fail fast and clearly.

The pc and q35 cases need the virtio-pci transport."""
import contextlib
import os
import re
import shutil
import struct
import tempfile

from shoal_qemu import boot, image

DISK_MIB = 8
BLOCK = 4096
TIMEOUT = 60

@contextlib.contextmanager
def scratch_disk(mib=DISK_MIB):
    """A sparse raw disk image under /tmp, removed afterwards."""
    fd, path = tempfile.mkstemp(prefix="shoal-blk-", suffix=".img", dir="/tmp")
    try:
        os.ftruncate(fd, mib << 20)
        os.close(fd)
        yield path
    finally:
        os.unlink(path)

def blkcheck(disk, args, smp=1, machine="microvm", extra=(), kernel_opts="", img=None):
    extra = ["--disk", disk] + list(extra) if disk else list(extra)
    return boot(img or image("blkcheck"), smp=smp, machine=machine, timeout=TIMEOUT,
                cmdline=f"{kernel_opts} -- {args}".strip(), extra=extra)

def shard_counts(b):
    """{shard: (written, verified)} from the per-shard report lines."""
    return {int(m.group(1)): (int(m.group(2)), int(m.group(3))) for m in
            re.finditer(r"^blkcheck: shard (\d+): blocks \d+-\d+, (\d+) written, (\d+) verified$", b.console, re.M)}

def expect_pass(b, smp, final, written, verified):
    assert b.status == 0, f"exit status {b.status}, expected 0; console tail:\n{b.tail()}"
    b.expect(final, "the final blkcheck line")
    counts = shard_counts(b)
    assert sorted(counts) == list(range(smp)), f"per-shard lines for shards {sorted(counts)}, expected 0..{smp - 1}:\n{b.tail()}"
    for shard, (w, v) in counts.items():
        assert (w > 0) == written and (v > 0) == verified, \
            f"shard {shard} wrote {w} and verified {v} blocks: every shard must do its share:\n{b.tail()}"

def expect_failure(b, pattern, what, statuses=(1, 2)):
    assert b.status in statuses, f"exit status {b.status}, expected one of {statuses}; console tail:\n{b.tail()}"
    b.expect(pattern, what)

def write_then_verify(machine, smp, queues=None):
    """Boot 1 writes and flushes; boot 2 (a fresh VM on the same file) finds every block."""
    def run():
        with scratch_disk() as disk:
            spec = disk + (f",queues={queues}" if queues else "")
            b = blkcheck(spec, "write 4242", smp=smp, machine=machine)
            expect_pass(b, smp, rf"^blkcheck: 2048 blocks written and flushed on {smp} shards$", True, False)
            b = blkcheck(spec, "verify 4242", smp=smp, machine=machine)
            expect_pass(b, smp, rf"^blkcheck: 2048 blocks verified on {smp} shards$", False, True)
            if smp > 1:
                # Each block records its writer, so another vCPU count can verify it too.
                b = blkcheck(spec, "verify 4242", smp=1, machine=machine)
                expect_pass(b, 1, r"^blkcheck: 2048 blocks verified on 1 shards$", False, True)
    return run

QBOOT = ["--bios", "/usr/share/qemu/qboot.rom"]

def firmware_or_legacy(machine, extra, expect, smp=2, own_device=None):
    """Disks where run.py's defaults are not what the user has: qboot's unassigned BARs, legacy devices.
    own_device: a -device for the disk instead of run.py's (which sets disable-legacy=on on pc)."""
    def run():
        with scratch_disk() as disk:
            if own_device:
                args = ["--qemu-arg=-drive", f"--qemu-arg=file={disk},if=none,id=d0,format=raw",
                        "--qemu-arg=-device", f"--qemu-arg={own_device},drive=d0"]
                b = blkcheck(None, "check 11", smp=smp, machine=machine, extra=list(extra) + args)
            else:
                b = blkcheck(disk, "check 11", smp=smp, machine=machine, extra=extra)
            b.expect(expect, "the device line")
            expect_pass(b, smp, rf"^blkcheck: 2048 blocks written and verified on {smp} shards$", True, True)
    return run

def fewer_queues_than_shards():
    """4 shards on 2 queues: shards 2 and 3 go through the queue owners by message."""
    with scratch_disk() as disk:
        b = blkcheck(disk + ",queues=2", "check 7 depth=48", smp=4)
        b.expect(r"virtio-blk .*2 queues for 4 shards", "two queues serving four shards")
        expect_pass(b, 4, r"^blkcheck: 2048 blocks written and verified on 4 shards$", True, True)

def full_queue_without_indirect():
    """16-entry rings, no indirect descriptors (3 slots a request), no event index, 2 queues for
    4 shards and 48 requests in flight per shard: most requests wait for room. Also reads the serial."""
    opts = ["indirect_desc=off", "event_idx=off", "queue-size=16", "serial=shoal-serial-0123456789"]
    extra = [a for o in opts for a in ("--qemu-arg=-global", f"--qemu-arg=virtio-blk-device.{o}")]
    with scratch_disk() as disk:
        b = blkcheck(disk + ",queues=2", "check 11 depth=48", smp=4, extra=extra)
        line = re.search(r"virtio-blk .*$", b.console, re.M)
        assert line and "indirect" not in line.group(0) and "event-idx" not in line.group(0), \
            f"expected a device without indirect descriptors and event index:\n{b.tail()}"
        # GET_ID returns 20 bytes: the serial cut to that length.
        b.expect(r'^blkcheck: device 0: .*id "shoal-serial-0123456"$', "the device serial from GET_ID")
        expect_pass(b, 4, r"^blkcheck: 2048 blocks written and verified on 4 shards$", True, True)

def halting_shards_pvh_no_acpi():
    """PVH entry, microvm without ACPI (devices from the command line, IOAPIC from the MP table),
    and shards that halt as soon as they are idle: every completion must wake its shard."""
    src = image("blkcheck")
    with tempfile.TemporaryDirectory(prefix="shoal-blk-") as tmp:
        img = os.path.join(tmp, "blkcheck-pvh.elf")
        shutil.copy(src, img)
        with open(img, "r+b") as f:
            data = f.read(8192)
            off = data.find(struct.pack("<I", 0x1BADB002))
            assert off >= 0, "no Multiboot header to remove"
            f.seek(off)
            f.write(b"\0\0\0\0")
        with scratch_disk() as disk:
            b = blkcheck(disk, "check 13", smp=4, img=img, kernel_opts="idle_poll_us=0",
                         extra=["--qemu-arg=-M", "--qemu-arg=microvm,acpi=off"])
            b.expect(r"booted by PVH", "PVH boot")
            expect_pass(b, 4, r"^blkcheck: 2048 blocks written and verified on 4 shards$", True, True)

def detects_corruption():
    """The verifier is worth something: a flipped byte and a zeroed block are both reported."""
    with scratch_disk() as disk:
        expect_pass(blkcheck(disk, "write 5", smp=2), 2, r"blocks written and flushed", True, False)
        with open(disk, "r+b") as f:
            f.seek(700 * BLOCK + 1000)
            byte = f.read(1)
            f.seek(700 * BLOCK + 1000)
            f.write(bytes([byte[0] ^ 0x40]))
        b = blkcheck(disk, "verify 5", smp=2)
        expect_failure(b, r"^blkcheck: FAILED on shard 0: block 700 fails its checksum", "the corrupted block", (1,))
        with open(disk, "r+b") as f:
            f.seek(700 * BLOCK)
            f.write(bytes(BLOCK))
        b = blkcheck(disk, "verify 5", smp=2)
        expect_failure(b, r"^blkcheck: FAILED on shard 0: block 700 reads back as zeros", "the lost block", (1,))
        b = blkcheck(disk, "verify 6 blocks=600", smp=2)
        expect_failure(b, r"block \d+ was written with seed 5, expected 6", "the wrong seed", (1,))

def disk_too_small():
    with scratch_disk(mib=4) as disk:
        b = blkcheck(disk, "check 1 blocks=2048", smp=2)
        expect_failure(b, r"^blkcheck: device 0 is too small: 2048 blocks of 4096 bytes need 8388608 bytes "
                          r"\(8 MiB\), the device has 4194304 bytes \(4 MiB\)$", "the too-small message", (2,))

def read_only_disk():
    """Writes to a read-only disk fail with a clear error; reading what is there still works."""
    with scratch_disk() as disk:
        expect_pass(blkcheck(disk, "write 21", smp=2), 2, r"blocks written and flushed", True, False)
        b = blkcheck(disk + ",readonly", "write 22", smp=2)
        b.expect(r"virtio-blk .*read-only", "the device reported read-only")
        expect_failure(b, r"^blkcheck: FAILED on shard \d: write of block \d+ \(offset \d+\) failed: "
                          r"the device is read-only \(-30\)$", "the read-only error", (1,))
        b = blkcheck(disk + ",readonly", "verify 21", smp=2)
        expect_pass(b, 2, r"^blkcheck: 2048 blocks verified on 2 shards$", False, True)

def pc_without_msix():
    """A device with no MSI-X vectors: its queues are polled and halts are bounded, so I/O still completes."""
    with scratch_disk() as disk:
        b = blkcheck(disk, "check 5", smp=2, machine="pc", kernel_opts="idle_poll_us=0",
                     extra=["--qemu-arg=-global", "--qemu-arg=virtio-blk-pci.vectors=0"])
        b.expect(r"no MSI-X|polled only", "the console says the queues are polled")
        expect_pass(b, 2, r"^blkcheck: 2048 blocks written and verified on 2 shards$", True, True)

def no_disk():
    b = blkcheck(None, "check", smp=2)
    expect_failure(b, r"^blkcheck: no block device 0 \(found 0\)", "the no-device message", (2,))

def cases():
    out = []
    for machine in ("microvm", "pc", "q35"):
        for smp in (1, 4):
            out.append((f"blk-{machine}-smp{smp}-write-then-verify", write_then_verify(machine, smp)))
    out.append(("blk-pc-qboot-smp2", firmware_or_legacy("pc", QBOOT, r"virtio-blk \(virtio 1\.x\)")))
    out.append(("blk-q35-qboot-smp2", firmware_or_legacy("q35", ["--qemu-arg=-bios", "--qemu-arg=" + QBOOT[1]],
                                                         r"virtio-blk \(virtio 1\.x\)")))
    out.append(("blk-microvm-legacy-mmio-smp2", firmware_or_legacy(
        "microvm", ["--qemu-arg=-global", "--qemu-arg=virtio-mmio.force-legacy=true"],
        r"virtio-mmio@\S+: virtio-blk \(legacy interface\)")))
    out.append(("blk-pc-legacy-pci-smp2", firmware_or_legacy(
        "pc", [], r"virtio-pci@\S+: virtio-blk \(legacy interface\)",
        own_device="virtio-blk-pci,disable-modern=on,num-queues=2")))
    out.append(("blk-microvm-fewer-queues-than-shards", fewer_queues_than_shards))
    out.append(("blk-microvm-full-queue-no-indirect", full_queue_without_indirect))
    out.append(("blk-microvm-pvh-noacpi-halting", halting_shards_pvh_no_acpi))
    out.append(("blk-microvm-detects-corruption", detects_corruption))
    out.append(("blk-microvm-disk-too-small", disk_too_small))
    out.append(("blk-microvm-read-only", read_only_disk))
    out.append(("blk-microvm-no-disk", no_disk))
    out.append(("blk-pc-no-msix-polled", pc_without_msix))
    return out
