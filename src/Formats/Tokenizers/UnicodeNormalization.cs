using System.Runtime.InteropServices;
using System.Text;

namespace Converter.Formats.Tokenizers;

/// <summary>
/// NFC/NFD/NFKC/NFKD for the tokenizer's Unicode normalizers. <see cref="string.Normalize(NormalizationForm)"/>
/// does the work where the runtime has normalization data; this repository runs with
/// InvariantGlobalization=true (Directory.Build.props), where .NET leaves strings unchanged without any error,
/// so there the ICU library (libicuuc, present wherever .NET runs on Linux) is called directly. These two
/// functions are the only native entry points of the tokenizer: unorm2_get{NFC,NFD,NFKC,NFKD}Instance and
/// unorm2_normalize, exported with the ICU major version as suffix (e.g. unorm2_normalize_72).
/// </summary>
internal static unsafe class UnicodeNormalization
{
    private static readonly bool RuntimeNormalizes = "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";
    private static readonly Lazy<Icu?> IcuLibrary = new(Icu.TryLoad);

    /// <summary>Whether <see cref="Normalize"/> can work in this process.</summary>
    public static bool IsAvailable => RuntimeNormalizes || IcuLibrary.Value != null;

    public static string Normalize(string text, NormalizationForm form)
    {
        if (Ascii.IsValid(text))
            return text; // ASCII is invariant under all four forms
        if (RuntimeNormalizes)
            return text.Normalize(form);
        var icu = IcuLibrary.Value ?? throw new NotSupportedException(
            "Unicode normalization is unavailable: the runtime runs in globalization-invariant mode and no ICU library (libicuuc) was found.");
        return icu.Normalize(text, form);
    }

    private sealed class Icu
    {
        private const int BufferOverflowError = 15; // U_BUFFER_OVERFLOW_ERROR in ICU's utypes.h

        private readonly delegate* unmanaged<nint, char*, int, char*, int, int*, int> normalize;
        private readonly nint[] instances = new nint[4]; // indexed by FormIndex

        private Icu(nint library, string suffix)
        {
            normalize = (delegate* unmanaged<nint, char*, int, char*, int, int*, int>)
                NativeLibrary.GetExport(library, "unorm2_normalize" + suffix);
            string[] getters = ["unorm2_getNFCInstance", "unorm2_getNFDInstance", "unorm2_getNFKCInstance", "unorm2_getNFKDInstance"];
            for (int i = 0; i < getters.Length; i++)
            {
                var get = (delegate* unmanaged<int*, nint>)NativeLibrary.GetExport(library, getters[i] + suffix);
                int error = 0;
                instances[i] = get(&error);
                if (error > 0 || instances[i] == 0)
                    throw new InvalidOperationException($"ICU {getters[i]}{suffix} failed with error {error}");
            }
        }

        public static Icu? TryLoad()
        {
            // ICU appends its major version to every symbol; probe the versions Linux distributions ship.
            for (int version = 90; version >= 50; version--)
            {
                if (!NativeLibrary.TryLoad($"libicuuc.so.{version}", out var library))
                    continue;
                foreach (var suffix in new[] { $"_{version}", "" })
                {
                    if (NativeLibrary.TryGetExport(library, "unorm2_normalize" + suffix, out _))
                        return new Icu(library, suffix);
                }
            }
            return null;
        }

        public string Normalize(string text, NormalizationForm form)
        {
            var instance = instances[FormIndex(form)];
            // Decompositions may grow the text; on overflow ICU returns the length it needs and we retry once.
            int capacity = text.Length * 2 + 16;
            while (true)
            {
                var buffer = new char[capacity];
                int error = 0, length;
                fixed (char* src = text)
                fixed (char* dst = buffer)
                    length = normalize(instance, src, text.Length, dst, capacity, &error);
                if (error == BufferOverflowError)
                {
                    capacity = length + 16;
                    continue;
                }
                if (error > 0)
                    throw new InvalidOperationException($"ICU unorm2_normalize failed with error {error}");
                return new string(buffer, 0, length);
            }
        }

        private static int FormIndex(NormalizationForm form) => form switch
        {
            NormalizationForm.FormC => 0,
            NormalizationForm.FormD => 1,
            NormalizationForm.FormKC => 2,
            NormalizationForm.FormKD => 3,
            _ => throw new ArgumentOutOfRangeException(nameof(form)),
        };
    }
}
