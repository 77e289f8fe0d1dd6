#!/usr/bin/env python3
"""Link the Shoal kernel and one application into a bootable ELF.

    build-image.py --app NAME [--cmdline "..."] [--build-dir build] -o OUT.elf

The kernel (build/libkernel.a) and the application (build/app-NAME.a) are
linked twice: the first link's function symbols become a sorted table that
the second link embeds, so a crash prints function names from the image
itself. The table sits after all code, so no function moves between links.

The result boots under QEMU -kernel (Multiboot header with address fields,
and a PVH ELF note for microvm/Firecracker). Because QEMU's Multiboot
loader copies the file as one blob, every loaded section must keep the same
file-offset-to-address distance; this script checks that.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"build-image: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
        sys.exit(1)
    return r.stdout

def c_string(s):
    out = []
    for ch in s.encode():
        if ch in (0x22, 0x5c) or ch < 0x20 or ch > 0x7e:
            out.append("\\%03o" % ch)
        else:
            out.append(chr(ch))
    return '"' + "".join(out) + '"'

def write_config_asm(path, app, cmdline):
    with open(path, "w") as f:
        f.write('\t.section .rodata\n')
        f.write('\t.global shoal_default_cmdline, shoal_app_name\n')
        f.write(f'shoal_default_cmdline: .asciz {c_string(cmdline)}\n')
        f.write(f'shoal_app_name: .asciz {c_string(app)}\n')

def function_symbols(elf):
    syms = []
    text_end = None
    for line in run(["nm", "-n", "--defined-only", elf]).splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        addr, kind, name = int(parts[0], 16), parts[1], parts[2]
        if name == "__text_end":
            text_end = addr
        if kind in "tT" and not name.startswith(".L"):
            syms.append((addr, name))
    if text_end is None:
        sys.exit("build-image: no __text_end symbol")
    syms.sort()
    syms.append((text_end, "__text_end"))
    return syms

def write_symtab_asm(path, syms):
    names, offsets, off = [], [], 0
    for _, name in syms:
        offsets.append(off)
        names.append(name)
        off += len(name) + 1
    with open(path, "w") as f:
        f.write('\t.section .ksymtab, "a"\n\t.align 8\n')
        f.write('\t.global ksym_count, ksym_addrs, ksym_name_offsets, ksym_names\n')
        f.write(f'ksym_count: .quad {len(syms)}\n')
        f.write('ksym_addrs:\n')
        for addr, _ in syms:
            f.write(f'\t.quad 0x{addr:x}\n')
        f.write('ksym_name_offsets:\n')
        for o in offsets:
            f.write(f'\t.long {o}\n')
        f.write('ksym_names:\n')
        for n in names:
            f.write(f'\t.asciz "{n}"\n')

def link(build_dir, app, extra_objs, out):
    kernel = os.path.join(build_dir, "libkernel.a")
    app_lib = os.path.join(build_dir, f"app-{app}.a")
    for p in (kernel, app_lib):
        if not os.path.exists(p):
            sys.exit(f"build-image: {p} is missing (run make APP={app})")
    run(["ld", "-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack",
         "-T", "boot/linker.ld", "-o", out,
         "--whole-archive", kernel, app_lib, "--no-whole-archive"] + extra_objs)

def check_flat_layout(elf):
    """Every PT_LOAD must have file offset - vaddr equal, or Multiboot loads garbage."""
    with open(elf, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("build-image: not an ELF64 file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    delta = None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 1 or p_filesz == 0:
            continue
        if delta is None:
            delta = p_offset - p_vaddr
        elif p_offset - p_vaddr != delta:
            sys.exit(f"build-image: segment at 0x{p_vaddr:x} breaks the flat layout Multiboot needs")
    mb = data.find(struct.pack("<I", 0x1BADB002), 0, 8192)
    if mb < 0 or mb % 4:
        sys.exit("build-image: no Multiboot header in the first 8 KiB")

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", required=True)
    ap.add_argument("--cmdline", default="", help="default kernel command line (a boot loader's replaces it)")
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cfg_s, cfg_o = os.path.join(tmp, "config.S"), os.path.join(tmp, "config.o")
        write_config_asm(cfg_s, args.app, args.cmdline)
        run(["gcc", "-c", cfg_s, "-o", cfg_o])
        pass1 = os.path.join(tmp, "pass1.elf")
        link(args.build_dir, args.app, [cfg_o], pass1)
        syms = function_symbols(pass1)
        sym_s, sym_o = os.path.join(tmp, "ksyms.S"), os.path.join(tmp, "ksyms.o")
        write_symtab_asm(sym_s, syms)
        run(["gcc", "-c", sym_s, "-o", sym_o])
        link(args.build_dir, args.app, [cfg_o, sym_o], args.output)
        if function_symbols(args.output) != syms:
            sys.exit("build-image: functions moved between the two links")
    check_flat_layout(args.output)
    run(["strip", "--strip-debug", "-o", args.output + ".tmp", args.output])
    os.replace(args.output + ".tmp", args.output)
    print(f"build-image: {args.output} ({os.path.getsize(args.output)} bytes, app {args.app})")

if __name__ == "__main__":
    main()
