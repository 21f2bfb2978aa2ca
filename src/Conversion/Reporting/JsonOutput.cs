using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Converter.Conversion.Reporting;

/// <summary>
/// The one JSON style of everything the CLI writes (--json results, the conversion report, checkpoints): snake_case
/// keys, nulls kept, indented, ±Infinity/NaN as names.
/// </summary>
public static class JsonOutput
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // Explicit, because the trimmed single-file build (tools/publish-gpu.sh) turns reflection off by default.
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    public static void Write<T>(TextWriter output, T value) => output.WriteLine(JsonSerializer.Serialize(value, Options));
}
