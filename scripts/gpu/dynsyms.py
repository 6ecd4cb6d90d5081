#!/usr/bin/env python3
"""Lists the dynamic (exported) symbols of ELF64 little-endian shared libraries whose mangled name matches a regex.

Used on a lent GPU box (which may have no binutils) to record the exact exported names of libtorch's C++ entry
points that TorchSharp does not wrap (e.g. at::cuda::CUDAGraph, c10::cuda stream functions), so that a later session
can bind them by name as Training/Autocast.cs binds autocast. Standard library only.

Usage: python3 dynsyms.py REGEX LIB.so [LIB.so ...]
"""
import re
import struct
import sys


def dynamic_symbols(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{path}: not an ELF64 little-endian file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    for sh_name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != 11:  # SHT_DYNSYM
            continue
        str_off = sections[link][4]
        for k in range(size // entsize):
            st_name, st_info, _other, st_shndx, st_value, _size = struct.unpack_from("<IBBHQQ", data, offset + k * entsize)
            if st_shndx == 0 or st_value == 0:  # undefined here: imported from another library
                continue
            end = data.index(b"\0", str_off + st_name)
            yield data[str_off + st_name:end].decode("ascii", "replace")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    pattern = re.compile(sys.argv[1])
    for path in sys.argv[2:]:
        names = sorted({n for n in dynamic_symbols(path) if pattern.search(n)})
        print(f"# {path}: {len(names)} matching exported symbols")
        for n in names:
            print(n)


if __name__ == "__main__":
    main()
