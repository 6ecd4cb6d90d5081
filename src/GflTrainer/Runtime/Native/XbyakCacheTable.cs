namespace GflTrainer.Runtime.Native;

/// <summary>
/// What the Xbyak copy inside libtorch 2.10's oneDNN 3.7.1 (src/cpu/x64/xbyak/xbyak_util.h, <c>Cpu::setNumCores</c>
/// and <c>Cpu::setCacheHierarchy</c>) computes from CPUID, reproduced bit for bit, quirks included: its
/// <c>extractBit(v, base, end)</c> takes end - base bits (one fewer than the field), and on AMD it reads leaf
/// 0x8000001D without checking that the processor (or the hypervisor) implements it. When a hypervisor zeroes that
/// leaf (TOPOEXT off), every level comes out as (0+1)*(0+1)*(0+1)*(0+1) = 1 byte: oneDNN then plans for 1-byte
/// caches, which divides by zero in its brgemm convolution backward (SIGFPE) and sends weight reorders down a cache
/// blocking path that leaves the padding lanes of blocked weights uninitialised (wrong and NaN input gradients for
/// convolutions whose output channels are not a multiple of the SIMD block). On Intel, a zeroed leaf 4 gives no
/// levels, and oneDNN's guesses apply, which is harmless.
/// </summary>
public static class XbyakCacheTable
{
    private const int MaxLevels = 10;

    /// <summary>Xbyak tells vendors apart by the last four characters of the vendor string (ECX of leaf 0) only.</summary>
    private const uint Ntel = 0x6c65746e, CAmd = 0x444d4163;

    public static CacheTable Compute(ICpuid cpu)
    {
        var sizes = new uint[MaxLevels];
        var sharing = new uint[MaxLevels];
        uint vendorEcx = cpu.Query(0, 0).Ecx;
        bool amd = vendorEcx == CAmd, intel = vendorEcx == Ntel;
        if (!amd && !intel) return new CacheTable(0, sizes, sharing);

        // setNumCores
        bool x2apic = false;
        var numCores = new uint[2];
        if (cpu.Query(0, 0).Eax >= 0xB)
        {
            x2apic = true;
            for (uint i = 0; i < 2; i++)
            {
                var r = cpu.Query(0xB, i);
                uint level = Bits(r.Ecx, 8, 15);
                if (level is 1 or 2) numCores[level - 1] = Bits(r.Ebx, 0, 15);
            }
            numCores[0] = Math.Max(1u, numCores[0]);
            numCores[1] = Math.Max(numCores[0], numCores[1]);
        }

        if (amd)
        {
            // Three levels from leaf 0x8000001D subleaves 0 (L1d), 2 (L2), 3 (L3).
            int index = 0;
            foreach (uint sub in new uint[] { 0, 2, 3 })
            {
                var r = cpu.Query(0x8000001D, sub);
                sizes[index] = (Bits(r.Ebx, 22, 31) + 1) * (Bits(r.Ebx, 12, 21) + 1) * (Bits(r.Ebx, 0, 11) + 1) * (r.Ecx + 1);
                int smtWidth = (int)numCores[0], logical = (int)numCores[1];
                int actual = (int)Bits(r.Eax, 14, 25) + 1;
                if (logical != 0) actual = Math.Min(actual, logical);
                // Xbyak divides by smtWidth unguarded (0 without x2APIC): it would crash; we report 1.
                sharing[index] = (uint)Math.Max(smtWidth == 0 ? 1 : actual / smtWidth, 1);
                index++;
            }
            return new CacheTable(3, sizes, sharing);
        }

        uint levels = 0, smt = 0, logicalCores = 0;
        if (x2apic) { smt = numCores[0]; logicalCores = numCores[1]; }
        for (uint i = 0; levels < MaxLevels; i++)
        {
            var r = cpu.Query(4, i);
            uint type = Bits(r.Eax, 0, 4);
            if (type == 0) break;
            if (type is 1 or 3)
            {
                uint actual = Bits(r.Eax, 14, 25) + 1;
                if (logicalCores != 0) actual = Math.Min(actual, logicalCores);
                sizes[levels] = (Bits(r.Ebx, 22, 31) + 1) * (Bits(r.Ebx, 12, 21) + 1) * (Bits(r.Ebx, 0, 11) + 1) * (r.Ecx + 1);
                if (type == 1 && smt == 0) smt = actual;
                sharing[levels] = Math.Max(smt == 0 ? actual : actual / smt, 1u);
                levels++;
            }
            if (i > 64) break;   // a recording that never ends the list
        }
        return new CacheTable(levels, sizes, sharing);
    }

    /// <summary>Xbyak's extractBit: (v &gt;&gt; base) &amp; ((1 &lt;&lt; (end - base)) - 1).</summary>
    private static uint Bits(uint v, int baseBit, int end) => (v >> baseBit) & ((1u << (end - baseBit)) - 1);
}
