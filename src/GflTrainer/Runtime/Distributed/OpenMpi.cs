using System.Runtime.InteropServices;

namespace GflTrainer.Runtime.Distributed;

/// <summary>The part of Open MPI's C API (libmpi.so.40: Debian's libopenmpi3, Open MPI 4.x/5.x) that data-parallel
/// training uses, bound at run time. Open MPI's handles are addresses of exported objects (<c>MPI_COMM_WORLD</c> is
/// <c>&amp;ompi_mpi_comm_world</c>, <c>MPI_FLOAT</c> is <c>&amp;ompi_mpi_float</c>), read with dlsym; MPICH-family
/// libraries use integer handles and a different soname, so they are refused by name rather than misread.</summary>
internal sealed unsafe class OpenMpi
{
    public const string Library = "libmpi.so.40";
    const int ThreadSerialized = 2;   // MPI_THREAD_SERIALIZED in Open MPI's mpi.h
    public static readonly nint InPlace = 1;   // MPI_IN_PLACE is ((void *) 1) in Open MPI
    public const nint StatusesIgnore = 0;      // MPI_STATUSES_IGNORE is ((MPI_Status *) 0) in Open MPI

    public nint CommWorld, Float, Double, Byte, Int, Sum;

    public delegate* unmanaged<int*, nint, int, int*, int> InitThread;
    public delegate* unmanaged<int*, int> Initialized;
    public delegate* unmanaged<int*, int> Finalized;
    public delegate* unmanaged<int> Finalize;
    public delegate* unmanaged<nint, int*, int> CommRank;
    public delegate* unmanaged<nint, int*, int> CommSize;
    public delegate* unmanaged<nint, nint, int, nint, nint, nint, int> Allreduce;
    public delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int> Iallreduce;   // MPI_Request is a pointer in Open MPI
    public delegate* unmanaged<int, nint*, int*, nint, int> Testall;
    public delegate* unmanaged<int, nint*, nint, int> Waitall;
    public delegate* unmanaged<nint, int, nint, int, nint, int> Bcast;
    public delegate* unmanaged<nint, int, nint, nint, int, nint, nint, int> Allgather;
    public delegate* unmanaged<nint, int, nint, nint, int*, int*, nint, nint, int> Allgatherv;
    public delegate* unmanaged<nint, int> Barrier;
    public delegate* unmanaged<int, byte*, int*, int> ErrorString;

    [DllImport("libc", EntryPoint = "dlopen")] static extern nint DlOpen(string file, int mode);
    [DllImport("libc", EntryPoint = "dlerror")] static extern nint DlError();
    const int RtldNow = 2, RtldGlobal = 0x100;

    static readonly Lazy<OpenMpi> Instance = new(Load);

    /// <summary>The bound library; throws <see cref="GflConfigException"/> with what to install when it is missing.</summary>
    public static OpenMpi Api => Instance.Value;

    static OpenMpi Load()
    {
        // RTLD_GLOBAL: Open MPI loads its components (btl, pml, coll...) as plugins that resolve libmpi's symbols
        // globally; with .NET's default local loading MPI_Init fails in them with undefined symbols.
        nint handle = OperatingSystem.IsLinux() ? DlOpen(Library, RtldNow | RtldGlobal) : 0;
        if (handle == 0)
        {
            var why = OperatingSystem.IsLinux() ? Marshal.PtrToStringUTF8(DlError()) : "Linux only";
            throw new GflConfigException($"train.dist.backend mpi: cannot load {Library} ({why}); install Open MPI " +
                "(Debian/Ubuntu: apt-get install openmpi-bin) and launch with mpirun or srun") { Key = "train.dist.backend" };
        }
        nint Get(string symbol) => NativeLibrary.TryGetExport(handle, symbol, out var p) ? p
            : throw new GflConfigException($"train.dist.backend mpi: {Library} has no {symbol}: not Open MPI (MPICH and Intel MPI " +
                "are not supported; use Open MPI)") { Key = "train.dist.backend" };
        return new OpenMpi
        {
            CommWorld = Get("ompi_mpi_comm_world"), Float = Get("ompi_mpi_float"), Double = Get("ompi_mpi_double"),
            Byte = Get("ompi_mpi_byte"), Int = Get("ompi_mpi_int"), Sum = Get("ompi_mpi_op_sum"),
            InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Get("MPI_Init_thread"),
            Initialized = (delegate* unmanaged<int*, int>)Get("MPI_Initialized"),
            Finalized = (delegate* unmanaged<int*, int>)Get("MPI_Finalized"),
            Finalize = (delegate* unmanaged<int>)Get("MPI_Finalize"),
            CommRank = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_rank"),
            CommSize = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_size"),
            Allreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)Get("MPI_Allreduce"),
            Iallreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int>)Get("MPI_Iallreduce"),
            Testall = (delegate* unmanaged<int, nint*, int*, nint, int>)Get("MPI_Testall"),
            Waitall = (delegate* unmanaged<int, nint*, nint, int>)Get("MPI_Waitall"),
            Bcast = (delegate* unmanaged<nint, int, nint, int, nint, int>)Get("MPI_Bcast"),
            Allgather = (delegate* unmanaged<nint, int, nint, nint, int, nint, nint, int>)Get("MPI_Allgather"),
            Allgatherv = (delegate* unmanaged<nint, int, nint, nint, int*, int*, nint, nint, int>)Get("MPI_Allgatherv"),
            Barrier = (delegate* unmanaged<nint, int>)Get("MPI_Barrier"),
            ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Get("MPI_Error_string"),
        };
    }

    /// <summary>MPI_Init_thread (serialized: one thread calls MPI at a time), once per process.</summary>
    public void Init()
    {
        int flag;
        Check(Initialized(&flag), "MPI_Initialized");
        if (flag != 0) return;
        int provided;
        Check(InitThread(null, 0, ThreadSerialized, &provided), "MPI_Init_thread");
        if (provided < ThreadSerialized)
            throw new InvalidOperationException($"Open MPI provides thread level {provided}, gfl needs MPI_THREAD_SERIALIZED ({ThreadSerialized})");
    }

    /// <summary>Throws with MPI's own message for a non-zero return code (only reached when the error handler returns
    /// codes; the default MPI_ERRORS_ARE_FATAL ends the job inside the call).</summary>
    public void Check(int code, string what)
    {
        if (code == 0) return;
        var text = stackalloc byte[512];
        int len = 0;
        string message = ErrorString(code, text, &len) == 0 ? System.Text.Encoding.UTF8.GetString(text, Math.Clamp(len, 0, 512)) : $"error {code}";
        throw new InvalidOperationException($"{what} failed: {message}");
    }
}
