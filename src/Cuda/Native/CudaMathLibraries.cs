using System.Runtime.InteropServices;

namespace Converter.Cuda.Native;

/// <summary>cuBLAS (cublas_v2.h) and cuSOLVER dense (cusolverDn.h) calls, by P/Invoke. Status 0 is success for both.</summary>
internal static unsafe partial class CudaMathLibraries
{
    internal const int OpN = 0;
    internal const int OpT = 1;
    internal const int FillLower = 0;
    internal const int FillUpper = 1;
    internal const int SideRight = 1;
    internal const int DiagNonUnit = 0;

    /// <summary>cudaDataType_t CUDA_R_32F (library_types.h): float operands and results.</summary>
    internal const int DataFloat = 0;

    /// <summary>cublasComputeType_t CUBLAS_COMPUTE_32F: FP32 products, as cublasSgemm.</summary>
    internal const int ComputeFloat = 68;

    /// <summary>cublasComputeType_t CUBLAS_COMPUTE_32F_FAST_TF32: operands rounded to TF32 for the tensor cores, FP32 accumulation.</summary>
    internal const int ComputeFastTf32 = 77;

    /// <summary>cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT: cuBLAS's heuristic picks the kernel.</summary>
    internal const int GemmDefault = -1;

    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasCreate_v2")] internal static partial int cublasCreate(out IntPtr handle);
    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasDestroy_v2")] internal static partial int cublasDestroy(IntPtr handle);
    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasSgemm_v2")]
    internal static partial int cublasSgemm(IntPtr handle, int transa, int transb, int m, int n, int k, float* alpha, ulong a, int lda, ulong b, int ldb,
        float* beta, ulong c, int ldc);
    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasSsyrk_v2")]
    internal static partial int cublasSsyrk(IntPtr handle, int uplo, int trans, int n, int k, float* alpha, ulong a, int lda, float* beta, ulong c, int ldc);
    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasDtrsm_v2")]
    internal static partial int cublasDtrsm(IntPtr handle, int side, int uplo, int trans, int diag, int m, int n, double* alpha, ulong a, int lda, ulong b, int ldb);
    [LibraryImport(CudaLibraries.Cublas)]
    internal static partial int cublasSgemmBatched(IntPtr handle, int transa, int transb, int m, int n, int k, float* alpha, ulong aArray, int lda,
        ulong bArray, int ldb, float* beta, ulong cArray, int ldc, int batchCount);
    [LibraryImport(CudaLibraries.Cublas)]
    internal static partial int cublasGemmEx(IntPtr handle, int transa, int transb, int m, int n, int k, float* alpha, ulong a, int aType, int lda,
        ulong b, int bType, int ldb, float* beta, ulong c, int cType, int ldc, int computeType, int algo);
    [LibraryImport(CudaLibraries.Cublas)]
    internal static partial int cublasGemmBatchedEx(IntPtr handle, int transa, int transb, int m, int n, int k, float* alpha, ulong aArray, int aType, int lda,
        ulong bArray, int bType, int ldb, float* beta, ulong cArray, int cType, int ldc, int batchCount, int computeType, int algo);

    [LibraryImport(CudaLibraries.Cusolver)] internal static partial int cusolverDnCreate(out IntPtr handle);
    [LibraryImport(CudaLibraries.Cusolver)] internal static partial int cusolverDnDestroy(IntPtr handle);
    [LibraryImport(CudaLibraries.Cusolver)] internal static partial int cusolverDnDpotrf_bufferSize(IntPtr handle, int uplo, int n, ulong a, int lda, out int work);
    [LibraryImport(CudaLibraries.Cusolver)] internal static partial int cusolverDnDpotrf(IntPtr handle, int uplo, int n, ulong a, int lda, ulong work, int workCount, ulong info);
}
