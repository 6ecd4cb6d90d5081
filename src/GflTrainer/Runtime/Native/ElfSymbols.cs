using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;

namespace GflTrainer.Runtime.Native;

/// <summary>
/// Looks up symbols, local ones included, in an ELF64 little-endian shared library's .symtab (falling back to .dynsym),
/// by mapping the file and searching the string table for the exact NUL-delimited name first: libtorch_cpu.so's
/// .strtab is ~80 MB, so comparing each of its 530 000 symbols' names would be slow; one vectorised search is not.
/// </summary>
public static class ElfSymbols
{
    /// <summary>Symbol values (for a shared library: offsets from its load base) of the <paramref name="names"/> found.</summary>
    public static Dictionary<string, ulong> Find(string path, IReadOnlyCollection<string> names)
    {
        var found = new Dictionary<string, ulong>();
        using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        unsafe
        {
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            try
            {
                long length = (long)view.SafeMemoryMappedViewHandle.ByteLength;
                var elf = new ReadOnlySpan<byte>(p, (int)Math.Min(length, int.MaxValue));
                if (length < 64 || !elf[..4].SequenceEqual("\u007fELF"u8) || elf[4] != 2 || elf[5] != 1)
                    throw new InvalidDataException($"{path}: not a 64-bit little-endian ELF file");
                foreach (uint wanted in new uint[] { 2 /* SHT_SYMTAB */, 11 /* SHT_DYNSYM */ })
                {
                    if (found.Count == names.Count) break;
                    if (Section(p, length, wanted) is not { } sym) continue;
                    var strtab = Section(p, length, linkOf: sym.Link)!.Value;
                    var strings = new ReadOnlySpan<byte>(p + strtab.Offset, checked((int)strtab.Size));
                    foreach (var name in names)
                    {
                        if (found.ContainsKey(name)) continue;
                        long nameOffset = ExactString(strings, name);
                        if (nameOffset < 0) continue;
                        for (long s = 0; s + 24 <= sym.Size; s += 24)
                        {
                            var entry = new ReadOnlySpan<byte>(p + sym.Offset + s, 24);
                            if (BinaryPrimitives.ReadUInt32LittleEndian(entry) != nameOffset) continue;
                            found[name] = BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]);
                            break;
                        }
                    }
                }
            }
            finally { view.SafeMemoryMappedViewHandle.ReleasePointer(); }
        }
        return found;
    }

    private readonly record struct SectionInfo(long Offset, long Size, uint Link);

    /// <summary>The first section of type <paramref name="type"/>, or the section with index <paramref name="linkOf"/>.</summary>
    private static unsafe SectionInfo? Section(byte* p, long length, uint type = 0, uint? linkOf = null)
    {
        var header = new ReadOnlySpan<byte>(p, 64);
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3C..]);
        if (shoff <= 0 || shentsize < 64 || shoff + (long)shnum * shentsize > length)
            throw new InvalidDataException("ELF section headers out of range");
        for (int i = 0; i < shnum; i++)
        {
            var sh = new ReadOnlySpan<byte>(p + shoff + (long)i * shentsize, 64);
            uint shType = BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]);
            if (linkOf is { } index ? i != index : shType != type) continue;
            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            long size = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x20..]);
            if (offset < 0 || offset + size > length) throw new InvalidDataException($"ELF section {i} out of range");
            return new SectionInfo(offset, size, BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]));
        }
        return null;
    }

    /// <summary>Offset of <paramref name="name"/> as a whole NUL-terminated entry of a string table, or -1.</summary>
    private static long ExactString(ReadOnlySpan<byte> strings, string name)
    {
        // A string table starts with a NUL, so every name, the first included, follows one.
        int i = strings.IndexOf(Encoding.ASCII.GetBytes("\0" + name + "\0"));
        return i < 0 ? -1 : i + 1;
    }
}
