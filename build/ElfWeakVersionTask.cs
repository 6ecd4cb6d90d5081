// MSBuild task (compiled by RoslynCodeTaskFactory): marks named entries of an ELF64 little-endian
// file's .gnu.version_r (SHT_GNU_verneed) as VER_FLG_WEAK. Layouts from the System V gABI / LSB:
//   Elf64_Ehdr: e_shoff @0x28 (8), e_shentsize @0x3A (2), e_shnum @0x3C (2)
//   Elf64_Shdr: sh_type @4 (4), sh_offset @0x18 (8), sh_size @0x20 (8), sh_link @0x28 (4)
//   Elf64_Verneed: vn_version(2) vn_cnt(2) vn_file(4) vn_aux(4) vn_next(4)
//   Elf64_Vernaux: vna_hash(4) vna_flags(2) vna_other(2) vna_name(4) vna_next(4)
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class GflMarkElfVersionsWeak : Task
{
    [Required] public string Directory { get; set; }
    [Required] public string Libraries { get; set; }
    [Required] public string VersionNames { get; set; }

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    public override bool Execute()
    {
        var names = new HashSet<string>(VersionNames.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries));
        foreach (var lib in Libraries.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries))
        {
            string path = Path.Combine(Directory, lib.Trim());
            if (!File.Exists(path)) continue;
            try
            {
                byte[] bytes = File.ReadAllBytes(path);
                int changed = Patch(bytes, names, out string detail);
                if (changed < 0) { Log.LogWarning("gfl: " + path + ": " + detail); continue; }
                if (changed == 0) { Log.LogMessage(MessageImportance.Low, "gfl: " + path + " already loadable (" + detail + ")"); continue; }
                // Write a sibling and rename over the output copy: never write through a hard link.
                string tmp = path + ".gflpatch.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Replace(tmp, path, null);
                Log.LogMessage(MessageImportance.High, "gfl: marked " + detail + " weak in " + path);
            }
            catch (Exception e)
            {
                Log.LogError("gfl: cannot patch " + path + ": " + e.Message);
                return false;
            }
        }
        return !Log.HasLoggedErrors;
    }

    /// <returns>number of entries changed, or -1 when the file is not a patchable ELF64 LE.</returns>
    public static int Patch(byte[] b, HashSet<string> names, out string detail)
    {
        detail = "";
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
        { detail = "not an ELF file"; return -1; }
        if (b[4] != 2 || b[5] != 1) { detail = "not ELF64 little-endian"; return -1; }
        long shoff = (long)BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        var found = new List<string>();
        int changed = 0;
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            if (BitConverter.ToUInt32(b, (int)sh + 4) != ShtGnuVerneed) continue;
            long off = (long)BitConverter.ToUInt64(b, (int)sh + 0x18);
            uint link = BitConverter.ToUInt32(b, (int)sh + 0x28);
            long strOff = (long)BitConverter.ToUInt64(b, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = off;
            while (true)
            {
                int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                uint aux = BitConverter.ToUInt32(b, (int)vn + 8);
                uint next = BitConverter.ToUInt32(b, (int)vn + 12);
                long a = vn + aux;
                for (int k = 0; k < cnt; k++)
                {
                    ushort flags = BitConverter.ToUInt16(b, (int)a + 4);
                    uint nameOff = BitConverter.ToUInt32(b, (int)a + 8);
                    string name = ReadCString(b, strOff + nameOff);
                    if (names.Contains(name))
                    {
                        found.Add(name);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            flags |= VerFlgWeak;
                            b[a + 4] = (byte)(flags & 0xff);
                            b[a + 5] = (byte)(flags >> 8);
                            changed++;
                        }
                    }
                    uint anext = BitConverter.ToUInt32(b, (int)a + 12);
                    if (anext == 0) break;
                    a += anext;
                }
                if (next == 0) break;
                vn += next;
            }
        }
        detail = found.Count == 0 ? "no matching version requirement" : string.Join(",", found);
        return changed;
    }

    static string ReadCString(byte[] b, long at)
    {
        int end = (int)at;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}
